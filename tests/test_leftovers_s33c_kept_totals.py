"""``keep_attributes(numbers=True)`` (``audit_mode``, the callback's ``no_trace``) copied every numpy array of up to
``KEPT_ARRAY_BYTES`` and every set of up to ``KEPT_SET_ITEMS`` items at each audit pass, with no bound in all: a model
keeping a thousand arrays of 1 MiB was copied whole (1 GB) at every pass. The copies now stop at ``KEPT_TOTAL_BYTES``
and ``KEPT_TOTAL_SET_ITEMS`` in all, the arrays and sets past it (in module order) left as the passes leave them, as a
larger one is. A frozenset a forward reassigns (``self.tags = self.tags | {k}``) was left holding the audit's value: it
is set back now, as a reassigned set is."""

import numpy as np
import torch
from torch import nn

from lightning_causal.causal.effects.input_effects import input_effects
from lightning_causal.causal.engine.kept_attributes import (
    KEPT_ARRAY_BYTES,
    KEPT_SET_ITEMS,
    KEPT_TOTAL_BYTES,
    KEPT_TOTAL_SET_ITEMS,
    keep_attributes,
)


def test_the_copies_are_bounded_in_all():
    model = nn.Sequential(*(nn.Linear(1, 1) for _ in range(KEPT_TOTAL_BYTES // KEPT_ARRAY_BYTES + 2)))
    for m in model:
        m.table = np.zeros(KEPT_ARRAY_BYTES // 8)  # each at the bound of one array
    model[0].ids = set(range(KEPT_SET_ITEMS))
    for m in model[1:KEPT_TOTAL_SET_ITEMS // KEPT_SET_ITEMS + 2]:
        m.ids = set(range(KEPT_SET_ITEMS))
    kept = keep_attributes(model, numbers=True)
    arrays = [v for v, _ in kept.arrays if isinstance(v, np.ndarray)]
    sets = [v for v, _ in kept.arrays if isinstance(v, set)]
    assert sum(a.nbytes for a in arrays) == KEPT_TOTAL_BYTES and len(arrays) == len(model) - 2
    assert sum(len(s) for s in sets) == KEPT_TOTAL_SET_ITEMS
    assert arrays[0] is model[0].table  # the first ones, in module order
    model[0].table += 1.0
    model[0].ids.add(-1)
    model[-1].table += 1.0  # past the bound: left as the passes leave it
    kept.restore()
    assert float(model[0].table.max()) == 0.0 and -1 not in model[0].ids and float(model[-1].table.max()) == 1.0


class Tagging(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.tags = frozenset({"train"})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.tags = self.tags | {f"rows={x.shape[0]}"}
        return self.lin(x)


def test_a_reassigned_frozenset_is_put_back_after_an_audit():
    model = Tagging()
    tags = model.tags
    input_effects(model, torch.randn(4, 3, generator=torch.Generator().manual_seed(0)), target=0)
    assert model.tags is tags
    kept = keep_attributes(model, numbers=True)
    model(torch.randn(2, 3))
    kept.restore()
    assert model.tags is tags
