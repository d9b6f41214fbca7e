"""``helper_objects`` (run at every ``audit_mode`` and callback ``no_trace``, newuser116's 7ece70e9) read the attributes of
each of a module's dozen hook ``OrderedDict``s (which hold a ``__dict__``), three times the cost of the rest of
``keep_attributes`` on a 6-layer TransformerEncoder; it now passes a module's plain values by type first and reads
only the objects that may be a datastore (review of newuser116)."""

from __future__ import annotations

import builtins

import torch
from torch import nn

from lightning_causal.causal.engine import kept_attributes


class _Store:
    def __init__(self) -> None:
        self.keys, self.ptr = torch.zeros(4, 2), 0


def test_helper_objects_reads_no_hook_dict(monkeypatch) -> None:
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
    model[0].store = _Store()
    read: list[type] = []

    def counted_vars(obj: object) -> dict:
        read.append(type(obj))
        return builtins.vars(obj)

    monkeypatch.setattr(kept_attributes, "vars", counted_vars, raising=False)  # the module's name lookup finds it first
    assert [name for name, _ in kept_attributes.helper_objects(model)] == ["0.store"]
    # each module once, and the one object holding a __dict__ that is no plain value: the store
    assert sorted(t.__name__ for t in read if not issubclass(t, nn.Module)) == ["_Store"]
    assert len(read) == len(list(model.modules())) + 1
