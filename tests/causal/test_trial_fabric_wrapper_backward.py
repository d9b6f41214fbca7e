"""The gradient-based estimators given a training wrapper that refuses backward passes it does not run itself
(Lightning Fabric's ``fabric.setup(model)`` under mixed precision): they failed with Fabric's bare
"requires you to call `fabric.backward(loss)` instead of `loss.backward()`", from a call that asked for no
backward pass. The error now carries a note naming the way out, the wrapped module ``model.module``, which
gives the plain module's numbers; a plain model's own errors get no note."""

from __future__ import annotations

import sys
import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import counterfactual_explanation, neural_cleanse, unit_effects

pytestmark = pytest.mark.skipif(sys.version_info < (3, 11), reason="exception notes (add_note) need Python 3.11")


class Refusing(nn.Module):
    """A wrapper in Fabric's manner: its outputs refuse a backward pass not started by ``Refusing.backward``."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.module(x)
        if out.requires_grad:
            out.register_hook(self._refuse)
        return out

    @staticmethod
    def _refuse(grad: torch.Tensor) -> None:
        raise RuntimeError("This wrapper requires you to call `wrapper.backward(loss)` instead of `loss.backward()`.")


class Broken(nn.Module):
    """A plain model whose own backward fails: not a wrapper, no note."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.lin(x)
        if out.requires_grad:
            out.register_hook(Refusing._refuse)
        return out


CALLS = {
    "counterfactual": lambda m, x: counterfactual_explanation(m, x[:4], 1, generator=torch.Generator().manual_seed(0)).counterfactuals,
    # the reversed masks: the net puts every input in class 0, whose anomaly index (as the other's, of 2 classes) is NaN
    "neural_cleanse": lambda m, x: torch.stack([t.mask for t in neural_cleanse(m, x, 2, steps=3, generator=torch.Generator().manual_seed(0)).triggers]),
    "atp": lambda m, x: unit_effects(m, x, "1" if not isinstance(m, Refusing) else "module.1", method="atp"),
}


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


@pytest.mark.parametrize("call", sorted(CALLS))
def test_a_refusing_wrapper_is_answered_with_model_module(call):
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))
    net = _net()
    with pytest.raises(RuntimeError, match=r"wrapper.backward") as err:
        CALLS[call](Refusing(net), x)
    notes = getattr(err.value, "__notes__", [])
    assert any("`model.module`" in note for note in notes), notes
    torch.testing.assert_close(CALLS[call](Refusing(net).module, x), CALLS[call](net, x))  # the way out


def test_a_plain_models_own_backward_error_gets_no_note():
    with pytest.raises(RuntimeError, match=r"wrapper.backward") as err:
        counterfactual_explanation(Broken(), torch.randn(4, 4), 1)
    assert not getattr(err.value, "__notes__", [])


def test_fabric_mixed_precision_wrapper_gets_the_note():
    fabric = pytest.importorskip("lightning.fabric").Fabric(accelerator="cpu", devices=1, precision="bf16-mixed")
    net = _net()
    model = fabric.setup(net)
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RuntimeError, match=r"fabric.backward") as err:
            counterfactual_explanation(model, x[:4], 1)
        assert any("`model.module`" in note for note in getattr(err.value, "__notes__", []))
        assert counterfactual_explanation(model.module, x[:4], 1).counterfactuals.shape == (4, 4)
