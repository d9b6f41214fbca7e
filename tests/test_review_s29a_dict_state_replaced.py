"""Review of f4907fb2 (a state carried in a dict attribute): ``KeptAttributes.changes`` named a dict's items set or
updated in place, but not a dict set in their place, ``self.state = {"h": h.detach()}`` (the attribute given a new dict
at every batch) or ``self.cache["enc"] = {"h": h.detach()}`` (an item given one): ``task_pass_state`` found no state,
``CausalRepairModule`` fused the task's pass with the terms' rows and left the joint batch's ``h [16, 5]`` for batches
of 8, and the fit trained otherwise than the unfused one (max |dw| 6.0e-3 after two epochs), as f4907fb2's model did.
A value is now a state's holder also where it is a dict holding tensors (at any depth), for attributes and items alike
(one rule, ``_value_change``)."""

from __future__ import annotations

import collections

import torch
from torch import nn

from lightning_causal.causal.engine.kept_attributes import keep_attributes
from lightning_causal.repair.carried_state import task_pass_state
from tests.repair.test_stateful_fused_s26 import F, H, N, fit_fused_and_unfused


class DictPerBatch(nn.Module):
    """A ``GRUCell`` stream whose state is carried in a dict made anew at every batch: ``self.state = {"h": h}``."""

    def __init__(self) -> None:
        super().__init__()
        self.cell, self.head, self.state = nn.GRUCell(F, H), nn.Linear(H, 2), {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        prev = self.state.get("h")
        h = self.cell(x, prev if self.training and prev is not None and prev.shape[0] == x.shape[0] else None)
        self.state = {"h": h.detach()}
        return self.head(h)


def test_changes_name_a_dict_set_in_place_of_an_attribute_or_an_item() -> None:
    m = nn.Linear(2, 2)
    m.state, m.cache, m.per_layer = {"h": torch.zeros(3, 4)}, {"enc": {"h": torch.zeros(3, 4)}}, collections.defaultdict(dict)
    m.config = {"depth": 2}
    kept = keep_attributes(m, reassigned_buffers=True)
    m.state = {"h": torch.ones(8, 4)}  # the attribute given a new dict
    m.cache["enc"] = {"h": torch.ones(8, 4)}  # an item given a new dict
    m.cache["dec"] = {"inner": {"c": (torch.ones(8, 2), torch.ones(8, 2))}}  # a new item, two levels down
    m.per_layer["a"]["h"] = torch.ones(8, 1)  # a defaultdict's item made on reading
    m.config = {"depth": 3}  # no tensor: no state
    m.cache_of_graph = {"W": m.weight * 2.0}  # computed in the autograd graph: no state
    assert sorted(kept.changes(m)) == [("cache['dec']", (8, 2), True), ("cache['enc']", (8, 4), True),
                                       ("per_layer['a']", (8, 1), True), ("state", (8, 4), True)]
    m.state = None  # a dict holding tensors removed: the state removed
    assert ("state", (), True) in kept.changes(m)
    kept.restore()
    assert m.state["h"].shape == (3, 4) and set(m.cache) == {"enc"} and m.cache["enc"]["h"].shape == (3, 4)
    assert dict(m.per_layer) == {} and not hasattr(m, "cache_of_graph")


def test_a_dict_of_numbers_or_a_dict_read_only_is_no_state() -> None:
    m = nn.Linear(2, 2)
    m.counts, m.table = {"calls": 0}, {"h": torch.zeros(8, 2)}
    kept = keep_attributes(m, reassigned_buffers=True)
    m.counts = {"calls": 1, "names": ["a"]}
    m(m.table["h"])
    assert kept.changes(m) == [] and task_pass_state(kept, m, 8) == ()


def test_a_state_carried_in_a_dict_made_at_every_batch_runs_unfused_and_trains_as_the_unfused_fit() -> None:
    repair, fused, unfused = fit_fused_and_unfused(DictPerBatch)
    assert repair._carried == (("state", (N, H)),)  # before: (), fused
    assert fused.state["h"].shape == (N, H)  # before: [16, 5], the joint batch's
    assert torch.equal(fused.state["h"], unfused.state["h"])
    for (name, a), b in zip(fused.state_dict().items(), unfused.state_dict().values()):
        assert torch.equal(a, b), name  # before: max |dw| 6.0e-3
