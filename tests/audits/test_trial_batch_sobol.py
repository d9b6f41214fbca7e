"""SobolAudit on a model of two inputs (trial "batch"): the refusal's advice must lead somewhere."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.audits import Probe, SobolAudit


class ImageAndMeta(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.img, self.meta = nn.Linear(16, 3), nn.Linear(2, 3)

    def forward(self, img: torch.Tensor, meta: torch.Tensor) -> torch.Tensor:
        return self.img(img.flatten(1)) + self.meta(meta)


class Concatenated(nn.Module):
    """The way out the message names: one input, the two concatenated, split in forward."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x[:, :16].reshape(-1, 1, 4, 4), x[:, 16:])


def test_the_advice_for_a_two_input_model_is_what_sobol_takes():
    g = torch.Generator().manual_seed(0)
    img, meta = torch.randn(32, 1, 4, 4, generator=g), torch.randn(32, 2, generator=g)
    model, audit = ImageAndMeta(), SobolAudit(n=64, n_bootstrap=0)
    for probe in (Probe((img, meta)), Probe(img, additional_forward_args=(meta,))):
        with pytest.raises(ValueError) as info:
            audit.validate(model, probe)
        message = str(info.value)
        # it used to advise per-sample forward arguments, `unpack_batch=lambda batch: (x1, y, (x2,))`,
        # which SobolAudit refuses in turn, and input_effects, which is not a Sobol' analysis
        assert "(x1, y, (x2,))" not in message and "input_effects" not in message
        assert "sobol_indices" in message and "concatenated" in message
    joined = Probe(torch.cat([img.flatten(1), meta], 1))
    result = SobolAudit(n=256, n_bootstrap=0, probability=False).run(Concatenated(model), joined)  # the way out runs
    assert result.scalars["sum_S"] == pytest.approx(1.0, abs=0.1)  # a logit linear in the inputs: additive, sum S = 1


def test_an_image_mask_of_the_image_shape_is_taken_as_the_other_audits_take_it():
    from lightning_causal.audits import InputEffectAudit

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Flatten(), nn.Linear(2 * 64, 3))
    x = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    quadrants = (torch.arange(8)[:, None] // 4) * 2 + torch.arange(8)[None, :] // 4  # [H, W], for [N, 1, H, W] inputs
    assert InputEffectAudit(feature_mask=quadrants, ace_values=None).run(model, Probe(x)).meta["groups"] == 4
    # SobolAudit refused it: "Expected argument `feature_mask` of shape [1, ...] shared by all samples ... but got [8, 8]"
    got = SobolAudit(n=64, feature_mask=quadrants, n_bootstrap=0).run(model, Probe(x))
    want = SobolAudit(n=64, feature_mask=quadrants[None, None], n_bootstrap=0).run(model, Probe(x))
    assert got.scalars == want.scalars and got.meta["groups"] == 4
