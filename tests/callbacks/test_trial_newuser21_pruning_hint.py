"""Hints of the pruning example's calls. ``causal_pruning_fn`` was typed to return ``type[BasePruningMethod]``, so the documented
``causal_pruning_fn(...).prune(0.25)`` (examples/causal_pruning.py, the docstring) was a mypy error: torch's
``prune(self, t)`` needs a tensor. The hint names the returned class's base, with its class method
``prune(amount)`` and its ``parameters_to_prune``; at run time the result is a subclass of it that prunes.
``fit_classifier`` returns the model it was given: a TypeVar keeps its type (``DigitsCNN``, not ``nn.Module``)."""

from __future__ import annotations

import typing

import torch
from torch import nn
from torch.nn.utils import prune as pytorch_prune

from lightning_causal.callbacks import causal_pruning_fn
from lightning_causal.callbacks.pruning import _CausalUnitPruning
from lightning_causal.models import ModuleT, fit_classifier


def test_the_returned_class_is_the_hinted_one_and_prunes_by_amount():
    assert typing.get_type_hints(causal_pruning_fn)["return"] == type[_CausalUnitPruning]
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
    method = causal_pruning_fn(model, torch.rand(8, 2), ["0"])
    assert issubclass(method, _CausalUnitPruning) and issubclass(method, pytorch_prune.BasePruningMethod)
    assert method.parameters_to_prune[0][0] is model[0]
    method.prune(1)  # one of the 3 hidden units: its weight row is masked whole
    assert int((model[0].weight_mask.sum(1) == 0).sum()) == 1


def test_fit_classifier_returns_the_model_it_was_given_typed_as_given():
    # examples/causal_pruning.py's train() -> DigitsCNN returned fit_classifier(DigitsCNN(), ...), typed nn.Module
    assert typing.get_type_hints(fit_classifier)["model"] is ModuleT is typing.get_type_hints(fit_classifier)["return"]
    model = nn.Linear(2, 2)
    x, y = torch.rand(8, 2, generator=torch.Generator().manual_seed(0)), torch.arange(8) % 2
    assert fit_classifier(model, x, y, epochs=1) is model and not model.training
