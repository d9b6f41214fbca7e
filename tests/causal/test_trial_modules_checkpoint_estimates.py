"""First-order estimates (``method="attribution"``/``"atp"``, ``screen=``) on a model with activation
checkpointing (``torch.utils.checkpoint``) that ``torch.fx`` cannot trace (the hook path), or on full
passes: the backward pass recomputes the checkpointed segment without the estimates' edits, and the
call failed with torch's "torch.utils.checkpoint: Recomputed values for the following tensors have
different metadata than during the forward pass" (or "A different number of tensors was saved"),
naming neither the layer nor a way out. It is now a ValueError naming both; exact effects on the
same model equal those of the model without checkpointing."""

import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from lightning_causal.causal import SetTo, unit_effects


class _Checkpointed(nn.Module):
    def __init__(self, use_checkpoint: bool = True) -> None:
        super().__init__()
        self.a, self.c = nn.Linear(4, 6), nn.Linear(6, 3)
        self.b = nn.Sequential(nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh())
        self.use_checkpoint = use_checkpoint

    def forward(self, x):
        if float(x.abs().sum()) < 0:  # a value in control flow: torch.fx cannot trace it (hook path)
            return None
        h = torch.tanh(self.a(x))
        h = checkpoint(self.b, h, use_reentrant=False) if self.use_checkpoint else self.b(h)
        return self.c(h)


def _models() -> tuple[nn.Module, nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    model = _Checkpointed().double().eval()
    plain = _Checkpointed(use_checkpoint=False).double().eval()
    plain.load_state_dict(model.state_dict())
    return model, plain, torch.randn(7, 4, dtype=torch.float64)


@pytest.mark.parametrize(("layer", "kwargs"), [
    ("b.0", {"method": "attribution"}), ("b.0", {"method": "atp"}), ("a", {"method": "attribution"}),
    ("b.0", {"screen": 2}), ("b.0", {"method": "attribution", "use_suffix": False}),
])
def test_first_order_estimates_across_a_checkpointed_segment_are_refused_naming_the_layer(layer, kwargs):
    model, _, x = _models()
    with pytest.raises(ValueError, match=rf"first-order estimates of layer '{layer}'.*torch.utils.checkpoint.*method='exact'"):
        unit_effects(model, x, layer, SetTo(0.5), **kwargs)


@pytest.mark.parametrize("layer", ["a", "b.0", "b.1"])
def test_exact_effects_with_checkpointing_equal_those_without(layer):
    model, plain, x = _models()
    effects, info = unit_effects(model, x, layer, SetTo(0.5), return_info=True)
    assert info.path == "hooks"
    torch.testing.assert_close(effects, unit_effects(plain, x, layer, SetTo(0.5)), rtol=0, atol=0)
