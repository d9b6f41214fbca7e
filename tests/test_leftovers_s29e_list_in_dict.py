"""A model that keeps its states in a list inside a dict attribute and appends to it at every pass
(``self.cache["hist"].append(h.detach())``) was missed by ``KeptAttributes.changes`` and ``restore``: only a list held
as an attribute itself had its items kept. ``audit_model`` left the list 11 items longer than before (the audit's own
passes' states, the next training batch starting from the last), and ``CausalRepairModule`` saw no carried state and
fused its task pass with the terms' rows. The lists a dict holds are kept as the attributes' lists are."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks.posthoc import audit_model
from lightning_causal.causal.engine.kept_attributes import keep_attributes
from tests.repair.test_stateful_fused_s26 import F, H, N, fit_fused_and_unfused


class HistStreams(nn.Module):
    """``Streams`` of test_stateful_fused_s26 with its states appended to ``self.cache["hist"]``, the last one carried."""

    def __init__(self) -> None:
        super().__init__()
        self.cell, self.head, self.cache = nn.GRUCell(F, H), nn.Linear(H, 2), {"hist": []}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hist = self.cache["hist"]
        prev = hist[-1] if self.training and hist and hist[-1].shape[0] == x.shape[0] else None
        h = self.cell(x, prev)
        hist.append(h.detach())
        return self.head(h)


def test_changes_name_a_list_in_a_dict_given_items_and_restore_puts_them_back() -> None:
    m = nn.Linear(2, 2)
    first = torch.zeros(3, 4)
    m.cache = {"hist": [first], "enc": {"seen": []}, "names": ["a"]}
    kept = keep_attributes(m)
    assert kept.changes(m) == []
    m.cache["hist"].append(torch.ones(8, 4))
    m.cache["enc"]["seen"].append(torch.ones(2))
    assert sorted(kept.changes(m)) == [("cache['enc']['seen']", (2,), True), ("cache['hist']", (3, 4), True)]
    kept.restore()
    assert m.cache["hist"] == [first] and m.cache["hist"][0] is first and m.cache["enc"]["seen"] == []


def test_audit_model_leaves_the_list_as_it_was() -> None:
    torch.manual_seed(0)
    model = HistStreams()
    model(torch.randn(N, F))
    before = list(model.cache["hist"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit_model(model, [InputEffectAudit(ace_values=None)], torch.randn(16, F))
    now = model.cache["hist"]
    assert len(now) == len(before) and all(a is b for a, b in zip(now, before))  # before: 12 items against 1


def test_a_state_carried_in_a_list_in_a_dict_runs_unfused_and_trains_as_the_unfused_fit() -> None:
    repair, fused, unfused = fit_fused_and_unfused(HistStreams)
    assert repair._carried == (("cache['hist']", (N, H)),)  # before: (), fused
    assert [t.shape for t in fused.cache["hist"]] == [t.shape for t in unfused.cache["hist"]]
    assert all(torch.equal(a, b) for a, b in zip(fused.cache["hist"], unfused.cache["hist"]))
    for (name, a), b in zip(fused.state_dict().items(), unfused.state_dict().values()):
        assert torch.equal(a, b), name
