"""Trial "multitask": causal pruning (causal_pruning_fn for Lightning's ModelPruning) of a model of
several outputs ({"cls", "reg"}). It took no `output=`, unlike every audit: set-up passed, and the
first prune, inside ModelPruning after an epoch, failed with 'pass `output=`' that could not be
passed. It now takes `output=` (checked at set-up), and scores the units on the chosen head."""

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_causal.callbacks import causal_pruning_fn, causal_unit_scores


class Heads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Linear(4, 6)
        self.cls, self.reg = nn.Linear(6, 3), nn.Linear(6, 1)

    def forward(self, x):
        h = torch.tanh(self.body(x))
        return {"cls": self.cls(h), "reg": 100.0 * self.reg(h)}


X = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))


def _scores_by_hand(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """E_x |f_t(x) - f_t(x | do(h_u := 0))| of the cls head's predicted class t, per neuron of body, in float64."""
    with torch.no_grad():
        out = model(x)["cls"]
        t = out.argmax(1, keepdim=True)
        scores = []
        for u in range(6):
            handle = model.body.register_forward_hook(lambda m, i, o, u=u: o.index_fill(1, torch.tensor([u]), 0.0))
            try:
                scores.append((out.gather(1, t) - model(x)["cls"].gather(1, t)).abs().mean())
            finally:
                handle.remove()
    return torch.stack(scores)


def test_pruning_a_model_of_several_outputs_needs_output_at_set_up():
    with pytest.raises(MisconfigurationException, match=r"dict with keys \['cls', 'reg'\].*pass `output=`"):
        causal_pruning_fn(Heads(), X, ["body"])  # before: accepted, and the first prune failed


def test_the_units_are_scored_and_pruned_on_the_chosen_head():
    model = Heads().double()
    x = X.double()
    ref = _scores_by_hand(model, x)
    torch.testing.assert_close(causal_unit_scores(model, x, ["body"], output="cls")["body"], ref)
    method = causal_pruning_fn(model, x, ["body"], output="cls")
    method.prune(2)
    pruned = (model.body.weight_mask.sum(1) == 0).nonzero().flatten().tolist()
    assert sorted(pruned) == sorted(ref.argsort()[:2].tolist())
