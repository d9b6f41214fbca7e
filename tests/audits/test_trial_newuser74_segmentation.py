"""A segmenter's per-pixel targets (newuser74's trial): a U-Net returning ``[N, K, H, W]`` trained on masks ``[N, H, W]``.

- ``target=masks`` (a class per pixel) in an estimator was refused as "to have 1 or 6 entries but got 384", which does
  not say what is wrong nor what to do: the message now says a class per position is no class per sample and names the
  ``output=`` that reduces the map and the ``target=`` of one class per sample.
- An audit that needs one class per sample (``CounterfactualAudit``) given the masks as probe labels was told of
  "per-position or multi-label targets" and ``unpack_batch=`` without how: it now names a class per pixel, the
  ``unpack_batch=`` that gives a region's class and, for ``CounterfactualAudit``, ``towards="runner_up"``.
- The region scores the recipe explains equal a hand "set, rerun, difference" loop, through the skip connection.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.audits import CounterfactualAudit, Probe
from lightning_causal.causal import CounterfactualSettings, input_effects, patch_mask, unit_effects

S, K = 8, 3


class TinyUNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.enc = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.mid = nn.Conv2d(4, 4, 3, padding=1)
        self.up = nn.ConvTranspose2d(4, 4, 2, stride=2)
        self.head = nn.Conv2d(8, K, 1)

    def forward(self, x):
        e = self.enc(x)
        return self.head(torch.cat([self.up(self.mid(F.max_pool2d(e, 2))), e], 1))  # [N, K, H, W]


def region(out):
    return out[:, :, 2:6, 2:6].mean((2, 3))  # each class's mean logit over the region: [N, K]


def data():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 1, S, S, generator=g)
    masks = torch.randint(0, K, (6, S, S), generator=g)
    return x, masks


def test_a_mask_as_target_is_refused_naming_the_region_output_and_one_class_per_sample():
    model, (x, masks) = TinyUNet().eval(), data()
    with pytest.raises(ValueError, match=r"shape \[6, 8, 8\]: a class per position, e\.g\. a segmentation mask, is not "
                                         r"one class per sample; choose what is explained with `output=`"):
        input_effects(model, x, patch_mask((1, S, S), 4), output=region, target=masks)
    # the way out it names: one class per sample, the region's most frequent
    cls = masks[:, 2:6, 2:6].flatten(1).mode(1).values
    got = input_effects(model, x, patch_mask((1, S, S), 4), output=region, target=cls)
    assert got.shape == (6, 4)


def test_the_region_effects_equal_a_hand_loop_through_the_skip_connection():
    model, (x, _) = TinyUNet().eval(), data()
    mask = patch_mask((1, S, S), 4)
    got = input_effects(model, x, mask, output=region, target=1)
    units = unit_effects(model, x, "enc.0", output=region, target=1)  # its output reaches the head twice (skip)
    with torch.no_grad():
        f0 = region(model(x))[:, 1]
        hand = torch.stack([f0 - region(model(x * (mask != g)))[:, 1] for g in range(4)], 1)
        cols = []
        for u in range(4):
            keep = torch.ones(1, 4, 1, 1)
            keep[:, u] = 0
            h = model.enc[0].register_forward_hook(lambda m, i, o, keep=keep: o * keep)
            cols.append(f0 - region(model(x))[:, 1])
            h.remove()
    torch.testing.assert_close(got, hand, rtol=0, atol=1e-5)
    torch.testing.assert_close(units, torch.stack(cols, 1), rtol=0, atol=1e-5)


def test_masks_as_probe_labels_of_a_counterfactual_audit_name_a_region_class_and_runner_up():
    model, (x, masks) = TinyUNet().eval(), data()
    with pytest.raises(ValueError, match=r"a class per pixel \(a segmentation mask \[N, H, W\]\).*"
                                         r"b\[1\]\[:, 8:16, 8:16\]\.flatten\(1\)\.mode\(1\)\.values.*"
                                         r"or `towards=\"runner_up\"`, which needs no labels"):
        CounterfactualAudit(output=region).validate(model, Probe(x, masks))
    result = CounterfactualAudit(output=region, towards="runner_up", max_samples=2,
                                 settings=CounterfactualSettings(steps=20)).run(model, Probe(x, masks))
    assert result.scalars["explained"] == 2.0


PAGE = Path(__file__).resolve().parents[2] / "docs" / "your_model.md"


@pytest.fixture(scope="module")
def page():
    code = re.search(r"<!-- segmentation -->\s*```python\n(.*?)```", PAGE.read_text(), re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "<your_model.md segmentation>", "exec"), namespace)  # noqa: S102 - the page's own example
    return namespace


def test_the_page_recipe_equals_a_hand_loop_and_its_audits_take_the_region_classes(page):
    net, x, mask, region = page["net"], page["x"], page["mask"], page["region"]
    with torch.no_grad():
        f0 = region(net(x))[:, 1]
        hand = torch.stack([f0 - region(net(x * (mask != g)))[:, 1] for g in range(int(mask.max()) + 1)], 1)
        # torchvision's {"out", "aux"}: the same recipe reads "out"
        assert torch.equal(region({"out": net(x), "aux": net(x)}), region(net(x)))
    torch.testing.assert_close(page["pixels"], hand, rtol=0, atol=1e-5)
    masks = torch.randint(0, 3, (8, 24, 24), generator=torch.Generator().manual_seed(0))
    inputs, labels, _ = page["region_class"]((x, masks, torch.ones(8)))  # (images, masks, weights) batches too
    assert labels.shape == (8,) and torch.equal(labels, masks[:, 8:16, 8:16].flatten(1).mode(1).values)
    audits = page["callbacks"][0].audits
    probe = Probe(inputs, labels)
    for audit in audits:
        audit.validate(_Wrapped(net), probe)
    result = audits[0].run(_Wrapped(net), probe)
    assert result.scalars["mean_abs_effect"] == pytest.approx(hand.abs().mean().item(), rel=1e-4)


class _Wrapped(nn.Module):  # the LightningModule's attribute path: "model.enc.0"
    def __init__(self, net):
        super().__init__()
        self.model = net

    def forward(self, x):
        return self.model(x)
