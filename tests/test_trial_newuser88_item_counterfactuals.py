"""docs/your_model.md, 'Which items to remove to flip a decision' (newuser88 trial): ``CounterfactualAudit`` and
``counterfactual_explanation`` refused item ids without a word of what to do (the audit: "optimises continuous inputs
but the probe holds torch.int64"; the core pointed to the embedding layer, which answers another question). The page's
recipe, the search over each bag's counts, runs as printed: the counts model gives the id model's outputs, every
decision flips by removing the planted item 7 alone, and each removal effect of a slot holding item 7 is large. The
refusals now point to it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal import CounterfactualAudit
from lightning_causal.audits import Probe
from lightning_causal.causal import counterfactual_explanation
from tests.test_docs import _block, _run_snippet


def test_item_counterfactual_recipe_removes_the_planted_item_alone():
    ns = _run_snippet(_block("your_model.md", "class AsCounts(nn.Module)"), {})
    model, ids, counts, cf, removed, removal = ns["model"], ns["ids"], ns["counts"], ns["cf"], ns["removed"], ns["removal"]
    with torch.no_grad():
        torch.testing.assert_close(ns["AsCounts"](model)(counts), model(ids))  # the same model on the counts
    assert bool(cf.success.all())
    assert (removed[:, 7] >= 1).all() and (removed.clone().index_fill_(1, torch.tensor([7]), 0) == 0).all()
    with torch.no_grad():
        assert (ns["AsCounts"](model)(cf.counterfactuals).argmax(1) == 0).all()
    seven = ids == 7
    assert removal[seven].mean() > 5 * removal[~seven & (ids != 0)].abs().mean()


class Bag(nn.Module):
    def __init__(self):
        super().__init__()
        self.bag = nn.EmbeddingBag(10, 4, padding_idx=0)
        self.head = nn.Linear(4, 2)

    def forward(self, ids):
        return self.head(self.bag(ids))


def test_refusals_of_ids_point_to_the_counts():
    ids = torch.tensor([[1, 2, 0], [3, 0, 0]])
    with pytest.raises(TypeError, match=r"which items to remove to flip a decision.*counts.*bounds=\(0, counts\)"):
        counterfactual_explanation(Bag(), ids, target_class=0)
    with pytest.raises(ValueError, match=r"which items to remove to flip a decision.*counts.*bounds=\(0, counts\)"):
        CounterfactualAudit().validate(Bag(), Probe(ids, torch.tensor([0, 1])))
