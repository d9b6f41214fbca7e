"""A model's first direct ``audit.run`` reads its task by the layer that computes its output (call order), not by the
layer it registers last: one watched pass of its first probe rows before the run, only where no watched pass has
called the model yet and it holds an activation that names a task."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.audits import BackdoorAudit, Probe
from lightning_causal.audits.label_task import label_task
from lightning_causal.audits.logit_reads import ORDER_ROWS
from lightning_causal.causal import Trigger


class _GateLast(nn.Module):  # a softmax classifier whose input gate's nn.Sigmoid is registered after the head
    def __init__(self) -> None:
        super().__init__()
        self.head, self.out = nn.Linear(4, 3), nn.Softmax(1)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        return self.out(self.head(x * self.gate(x)))


class _HeadFirst(nn.Module):  # a multi-label classifier whose head's nn.Sigmoid is registered before its body
    def __init__(self) -> None:
        super().__init__()
        self.out = nn.Sigmoid()
        self.body = nn.Linear(4, 3)

    def forward(self, x):
        return self.out(self.body(x))


def _probe() -> Probe:
    torch.manual_seed(0)
    return Probe(torch.randn(24, 4), nn.functional.one_hot(torch.arange(24) % 3, 3).float())  # one-hot float labels


def _audit() -> BackdoorAudit:
    return BackdoorAudit(Trigger(torch.zeros(4), torch.ones(4), target=1))


@pytest.mark.filterwarnings("ignore")
def test_a_gate_registered_after_a_softmax_head_is_read_as_one_class_on_the_first_run():
    model = _GateLast()
    assert label_task(model) == "multilabel"  # never watched: the last layer registered
    result = _audit().run(model, _probe())  # one-hot labels of a softmax classifier: classes, not multi-hot
    assert set(result.scalars) == {"asr", "clean_accuracy", "trigger_ace"}
    assert label_task(model) == "multiclass"


@pytest.mark.filterwarnings("ignore")
def test_a_sigmoid_head_registered_first_is_read_as_multi_label_on_the_first_run():
    with pytest.raises(ValueError, match="multi-hot"):  # a multi-label classifier's rows, one label each
        _audit().run(_HeadFirst(), _probe())


_ROWS: list[int] = []  # the rows of each pass (outside the model: audit_mode puts back what a pass writes into it)


class _Counted(_GateLast):
    def forward(self, x):
        _ROWS.append(int(x.shape[0]))
        return super().forward(x)


@pytest.mark.filterwarnings("ignore")
def test_the_pass_runs_once_before_the_first_run_only():
    model, probe = _Counted(), _probe()
    _ROWS.clear()
    _audit().run(model, probe)
    first = list(_ROWS)
    assert first[0] == ORDER_ROWS  # the watched pass, before the run's own
    _ROWS.clear()
    _audit().run(model, probe)
    assert _ROWS == first[1:]  # the order is known: the same passes, less that one
