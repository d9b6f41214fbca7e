"""Leftovers of session 28 (repair): a model that carries its state across batches in a dict attribute
(``self.cache["h"] = h.detach()``) was not seen by ``KeptAttributes.changes``, so ``CausalRepairModule`` fused its task
pass with the terms' rows and left the joint batch's state, ``cache['h'] [16, 5]`` for batches of 8, and trained
otherwise than the unfused fit (max |dw| 6.0e-3 after two epochs). A dict's items are now reported as the tensor
attributes are: the model runs unfused, the state is the task's and the weights equal the unfused fit's."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.causal.engine.kept_attributes import keep_attributes
from lightning_causal.repair.carried_state import task_pass_state
from tests.repair.test_stateful_fused_s26 import F, H, N, fit_fused_and_unfused


class DictStreams(nn.Module):
    """``Streams`` of test_stateful_fused_s26 with the state kept in a dict: ``self.cache["h"]``."""

    def __init__(self) -> None:
        super().__init__()
        self.cell, self.head, self.cache = nn.GRUCell(F, H), nn.Linear(H, 2), {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        prev = self.cache.get("h")
        h = self.cell(x, prev if self.training and prev is not None and prev.shape[0] == x.shape[0] else None)
        self.cache["h"] = h.detach()
        return self.head(h)


def test_changes_name_a_dict_item_set_updated_in_place_or_removed() -> None:
    m = nn.Linear(2, 2)
    m.cache = {"h": torch.zeros(3, 4), "enc": {"c": torch.zeros(2)}, "steps": 0}
    kept = keep_attributes(m)
    assert kept.changes(m) == []
    m.cache["h"] = torch.ones(8, 4)  # set
    m.cache["enc"]["c"].add_(1.0)  # updated in place, in a nested dict
    m.cache["new"] = (torch.ones(8, 1), torch.ones(8, 1))
    m.cache["steps"] = 1  # no tensor: no state
    assert sorted(kept.changes(m)) == [("cache['enc']['c']", (2,), False), ("cache['h']", (8, 4), True),
                                       ("cache['new']", (8, 1), True)]
    kept.restore()
    assert m.cache["h"].shape == (3, 4) and "new" not in m.cache and float(m.cache["enc"]["c"].sum()) == 0.0


def test_a_dict_item_computed_in_the_graph_is_no_carried_state() -> None:
    m = nn.Linear(2, 2)
    m.cache = {}
    kept = keep_attributes(m, reassigned_buffers=True)
    m.cache["W"] = m.weight * 2.0  # a value every pass computes again (as weight_norm's weight), not a state
    assert kept.changes(m) == []
    assert task_pass_state(kept, m, 2) == ()


def test_a_state_carried_in_a_dict_runs_unfused_and_trains_as_the_unfused_fit() -> None:
    repair, fused, unfused = fit_fused_and_unfused(DictStreams)
    assert repair._carried == (("cache['h']", (N, H)),)  # before: (), fused
    assert fused.cache["h"].shape == (N, H)  # before: [16, 5], the joint batch's
    assert torch.equal(fused.cache["h"], unfused.cache["h"])
    for (name, a), b in zip(fused.state_dict().items(), unfused.state_dict().values()):
        assert torch.equal(a, b), name
