"""CounterfactualFairnessTerm with a model of two inputs, ``model(image, tab)``, the sensitive
attribute a column of ``tab``. Batches of both inputs were refused in a plain loop with
"Expected a batch `x` [N, ...] ... but got <class 'tuple'>" (and in a fit with no way out); the
message now names the recipe, which the second test checks against the total variation by hand."""

import pytest
import torch

from lightning_causal import AttributeFlip, CausalRepairModule, CounterfactualFairnessTerm
from tests.helpers.multimodal import ImageTab, TabFirst


def _batch(n=12):
    g = torch.Generator().manual_seed(0)
    tab = torch.randn(n, 5, generator=g, dtype=torch.float64)
    tab[:, 3] = (torch.rand(n, generator=g) < 0.5).double()
    return {"image": torch.randn(n, 1, 8, 8, generator=g, dtype=torch.float64), "tab": tab, "y": torch.arange(n) % 2}


def test_a_batch_of_two_inputs_is_refused_with_the_way_out():
    module = CausalRepairModule(ImageTab().double(), [CounterfactualFairnessTerm(AttributeFlip(3))],
                                unpack_batch=lambda b: ((b["image"], b["tab"]), b["y"], None))
    with pytest.raises(ValueError, match=r"holds 2 inputs .*forward arguments.*forward\(self, tab, image\)"):
        module.objective(_batch())


@pytest.mark.parametrize("fuse", [True, False])
@pytest.mark.parametrize("fraction", [1.0, 0.5])
def test_the_recipe_pairs_each_row_with_its_own_image(fuse, fraction):
    torch.manual_seed(0)
    model = ImageTab().double()
    batch = _batch()
    term = CounterfactualFairnessTerm(AttributeFlip(3), weight=1.0, fraction=fraction, name="cf")
    module = CausalRepairModule(TabFirst(model), [term], fuse_forward=fuse,
                                unpack_batch=lambda b: (b["tab"], b["y"], {"image": b["image"]}))
    _, logs = module.objective(batch)
    k = int(12 * fraction)
    flipped = batch["tab"][:k].clone()
    flipped[:, 3] = 1 - flipped[:, 3]
    with torch.no_grad():
        p = model(batch["image"][:k], batch["tab"][:k]).softmax(1)
        q = model(batch["image"][:k], flipped).softmax(1)
    torch.testing.assert_close(logs["repair/cf"], 0.5 * (p - q).abs().sum(1).mean(), rtol=0, atol=1e-12)
