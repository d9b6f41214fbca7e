"""CaptumBaseline on uint8 images with a per-pixel baseline (a mean image): it was refused ("to be an int for
torch.uint8 inputs") because the stability metric kept ``int(baseline)`` out of its perturbation. An integer
tensor is taken now: the causal effects and Captum's ablation use it pixel by pixel, and the stability
perturbation keeps each pixel that equals its own baseline value (as it keeps a scalar baseline's value)."""

import pytest
import torch
from torch import nn

from lightning_causal import CaptumBaseline
from lightning_causal.audits import Probe
from lightning_causal.audits.captum_metrics import stability


class _Cast(nn.Module):  # uint8 pixels read as floats in [0, 1], a linear score per class
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2, bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, -2.0, 3.0, 0.5]]))

    def forward(self, x):
        return self.fc(x.float().flatten(1) / 255)


_MEAN = torch.tensor([[[10, 20], [30, 40]]], dtype=torch.uint8)  # [1, 2, 2]: one reference value per pixel


def _pixels() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(100, 250, (6, 1, 2, 2), generator=g).to(torch.uint8)
    x[:, 0, 0, 0] = 10  # at its own baseline value: kept by the stability perturbation
    x[::2, 0, 0, 1] = 30  # another pixel's baseline value, not its own (20): perturbed
    return x


def test_a_per_pixel_uint8_baseline_is_used_pixel_by_pixel():
    x = _pixels()
    model = _Cast().eval()
    r = CaptumBaseline(("FeatureAblation",), baseline=_MEAN, target=1).run(model, Probe(x))
    # the effect of pixel j: w_j (x_j − b_j) / 255, b_j the mean image's own pixel
    want = (x.float().flatten(1) - _MEAN.float().flatten()) * model.fc.weight[1].detach() / 255
    assert torch.allclose(r.maps["causal"].flatten(1).float(), want, atol=1e-6)
    assert r.scalars["compare/FeatureAblation/spearman"] == pytest.approx(1.0)  # ablation is the exact effect
    assert -1.0 <= r.scalars["stability"] <= 1.0


def test_stability_keeps_each_pixel_at_its_own_baseline():
    x = _pixels()
    audit = CaptumBaseline(("FeatureAblation",), baseline=_MEAN, target=1)
    seen = []

    def explain(z, _target):
        seen.append(z.clone())
        return z.float().flatten(1)

    s = x.float().flatten(1)
    stability(audit, explain, Probe(x), torch.ones(6, dtype=torch.long), s, 1.0)  # share 1: every eligible pixel redrawn
    (z,) = seen
    assert torch.equal(z[:, 0, 0, 0], x[:, 0, 0, 0])  # at the baseline: kept
    drawn = z[:, 0].flatten(1)[:, 1:]
    assert not bool((drawn == 10).any())  # no replacement is drawn from a pixel at its baseline
    assert not torch.equal(z[::2, 0, 0, 1], x[::2, 0, 0, 1])  # 30 is no baseline of this pixel: it is redrawn


def test_a_float_mean_image_is_refused_naming_the_integer_tensor():
    mean = _pixels().float().mean(0)
    with pytest.raises(ValueError, match=r"to be an int in \[0, 255\] or an integer .* tensor .* for inputs of dtype torch.uint8 "
                                         r"but got a torch.float32 tensor \[1, 2, 2\]: .*"
                                         r"per-pixel reference image.*mean.round\(\).to\(torch.uint8\)"):
        CaptumBaseline(("FeatureAblation",), baseline=mean, target=1).run(_Cast(), Probe(_pixels()))


def test_a_one_element_float_baseline_is_shown_by_its_value():
    """Review of the change (git diff 8e7989a): the refusal showed a one-element tensor as 'a torch.float32 tensor []',
    hiding the value it showed before 45f8fee."""
    with pytest.raises(ValueError, match=r"to be an int in \[0, 255\] .*for inputs of dtype torch.uint8 but got tensor\(0\.5000\): "):
        CaptumBaseline(("FeatureAblation",), baseline=torch.tensor(0.5), target=1).run(_Cast(), Probe(_pixels()))
