"""``batches.time_event`` was called twice on the same labels or batch where times are whole units (days): once for float
times, once with ``whole=True``, each pass over the values. It now says which reading holds ("float", "whole" or
``None``), so each caller calls it once, and the messages are as before."""

import pytest
import torch

import lightning_causal.audits.options as options
import lightning_causal.batches as batches
from tests.audits.test_leftovers_s34b_whole_survival_times import (
    _days,
    fairness_on_stacked_whole_days,
)


def _counted(monkeypatch: pytest.MonkeyPatch, module: object) -> list:
    calls: list = []
    real = batches.time_event

    def counted(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "time_event", counted)
    return calls


def test_a_whole_unit_survival_batch_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counted(monkeypatch, batches)
    n = 16
    with pytest.raises(ValueError, match=r"if batch\[1\] holds a survival model's times in whole units"):
        batches.default_unpack_batch((torch.randn(n, 3), _days(n), (torch.arange(n) % 4 != 0).long()))
    assert len(calls) == 1


def test_stacked_whole_unit_labels_are_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counted(monkeypatch, options)
    fairness_on_stacked_whole_days(r"if these rows are a survival model's \(time, event\)")
    assert len(calls) == 1


def test_each_reading() -> None:
    y = torch.tensor([0.0, 1.0, 1.0, 0.0])
    assert batches.time_event(torch.tensor([2.5, 0.3, 4.0, 1.2]), y) == "float"
    assert batches.time_event(torch.tensor([30, 412, 95, 7]), y) == "whole"
    for time, event in [(y, torch.ones(4)), (y, y), (torch.tensor([30, 412, 95, 7]).bool(), y),
                        (torch.tensor([2.5, -0.3, 4.0, 1.2]), y), (torch.tensor([2.5, 0.3, 4.0, 1.2]), y * 2),
                        (torch.tensor([2.5, 0.3, 4.0, 1.2]), torch.zeros(4)), (torch.tensor([2, 3]), y),
                        ("days", y), (torch.tensor([[2.5]]), torch.tensor([[1.0]]))]:
        assert batches.time_event(time, event) is None
