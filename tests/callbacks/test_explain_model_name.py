"""Errors of the audits run with CausalAuditCallback(explain=...) name the user's model (``ImageTab``), not the
wrapper the callback puts around it (``ChosenInput``), which the user never wrote: one error path per estimator
family that names the model (the layer names of the layer map, Captum's layer methods and the fairness audit; the
layer map's default layers; a wrapper refusing the backward pass), and :func:`model_name` through the wrappers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.audits import CaptumBaseline, FairnessAudit, LayerMapAudit
from lightning_causal.causal.engine.chosen_input import ChosenInput, chosen_input, model_name
from lightning_causal.causal.engine.state import _note_wrapper_backward
from lightning_causal.causal.structure.layer_map import layer_causal_map
from tests.callbacks.test_explain_input import fit


@pytest.mark.parametrize("audit", [
    LayerMapAudit(layers=["tabb.0"]),
    CaptumBaseline(methods=["IntegratedGradients"], layers=["tabb.0"]),
    FairnessAudit(lambda x: x.index_fill(1, torch.tensor([0]), 1.0), layers=["tabb.0"]),
], ids=["layer_map", "captum", "fairness"])
def test_an_unknown_layer_names_the_users_model(tmp_path, audit):
    with pytest.raises(Exception, match=r"Unknown module name 'tabb.0' in model ImageTab; close matches") as caught:
        fit(tmp_path, [audit], explain="tab")
    assert "ChosenInput" not in str(caught.value)


class Sums(nn.Module):
    """``forward(self, a, b)`` with no parameters: nothing the layer map's default layers read."""

    def forward(self, a, b):
        return torch.stack([a.sum(1), b.sum(1)], 1)


def test_the_default_layers_of_a_model_without_parameters_name_it():
    wrapper, x, args = chosen_input(Sums(), (torch.randn(4, 3), torch.randn(4, 2)), 1)
    assert isinstance(wrapper, ChosenInput)
    with pytest.raises(ValueError, match=r"Expected the model Sums to hold a module with parameters"):
        layer_causal_map(wrapper, x, additional_forward_args=args)


class Refusing(nn.Module):
    """A wrapper of the user's module as Lightning Fabric's ``_FabricModule``: ``model.module``."""

    def __init__(self) -> None:
        super().__init__()
        self.module = nn.Bilinear(2, 2, 1)

    def forward(self, a, b):
        return self.module(a, b)


def test_the_backward_note_names_the_model_not_the_explain_wrapper():
    err = RuntimeError("requires you to call `fabric.backward(loss)`")
    _note_wrapper_backward(ChosenInput(Refusing(), 1, 2), err)
    assert err.__notes__ and err.__notes__[0].startswith("lightning_causal: the model (Refusing) wraps another module")


def test_model_name_sees_through_the_wrappers():
    model = nn.Bilinear(2, 2, 1)
    assert model_name(model) == "Bilinear" and model_name(ChosenInput(model, 1, 2)) == "Bilinear"
    assert model_name(ChosenInput(torch.compile(model), 1, 2)) == "Bilinear"  # compiled lazily: nothing runs here
    assert model_name(torch.compile(model)) == "Bilinear" and type(torch.compile(model)).__name__ == "OptimizedModule"
