"""Monitoring trial, causal pruning: a ``target`` the model cannot explain is refused when the
pruning method is made, not at the first pruning epoch inside ``ModelPruning``."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_causal.callbacks.pruning import causal_pruning_fn
from lightning_causal.models import MLP

X = torch.rand(10, 4, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(("target", "match"), [
    (5, r"`target` to be in \[0, 1\] but got \[5\]"),
    (torch.tensor([0, 1, 0]), r"`target` to have 1 or 10 entries but got 3"),
    (torch.tensor([0.0]), r"`target` to hold integer class indices"),
])
def test_a_target_the_model_cannot_explain_is_refused_at_once(target, match):
    with pytest.raises(MisconfigurationException, match=match):
        causal_pruning_fn(MLP(4, (8,)), X, ["net.0"], target=target)


def test_a_valid_target_prunes_as_before():
    model = MLP(4, (8,))
    method = causal_pruning_fn(model, X, ["net.0"], target=torch.arange(10) % 2)
    method.prune(3)
    assert int((model.net[0].weight_mask.sum(1) == 0).sum()) == 3
