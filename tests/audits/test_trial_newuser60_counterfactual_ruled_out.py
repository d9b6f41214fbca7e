"""CounterfactualAudit on a class-incremental model whose classes not yet seen are ruled out with ``-inf`` logits
(``logits.masked_fill(~seen, float("-inf"))``, newuser60 trial): a probe sample labelled with such a class is
misclassified, and its row said "not found: no change" with no reason (the card: ``#1 0 → 6 (not found): no change``),
as if the class could be reached. A note now names those samples and their classes, the cause and the way out."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal import CounterfactualAudit
from lightning_causal.audits import Probe
from lightning_causal.causal import CounterfactualSettings


class _Incremental(nn.Module):
    """The identity on 4 columns as logits, classes 2 and 3 ruled out."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("seen", torch.tensor([True, True, False, False]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.masked_fill(~self.seen, float("-inf"))


def test_the_samples_labelled_with_a_ruled_out_class_are_named_with_why() -> None:
    x = torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0],
                      [0.0, 1.0, 0.0, 0.0]])
    y = torch.tensor([0, 1, 2, 3, 2])  # sample 1: class 1, reachable (x1 raised above x0); 2, 3, 4: ruled out
    audit = CounterfactualAudit(settings=CounterfactualSettings(steps=60, lr=0.1))
    result = audit.run(_Incremental(), Probe(x, y))
    assert result.scalars["misclassified_rate"] == 4 / 5
    rows = {row["index"]: row["success"] for row in result.tables["counterfactuals"]}
    assert rows == {1: True, 2: False, 3: False, 4: False}
    notes = [n for n in result.meta.get("notes", []) if "-inf" in n]
    assert len(notes) == 1
    assert notes[0].startswith("samples [2, 3, 4] (3 of the 4 explained) have no counterfactual: the model's output for "
                               "their target class (2, 3) is -inf there, a class it rules out")

