"""BackdoorSuppressionTerm with class labels outside 0..C-1 (a 1-based dataset's labels 1..C, a -1 for "unknown")
stopped deep in torch's cross_entropy with "IndexError: Target 3 is out of bounds.", naming neither the term nor the
parameter (on a GPU: a device-side assert). The labels are checked on the term's first step (one read, beside the
first step's check of the logits) and, on later steps, where torch's cross-entropy refuses them (the error path
only): a ValueError naming `y`, the value and the classes allowed; a step still reads nothing back from the device."""

import pytest
import torch
from torch import nn

from lightning_causal.causal.backdoor.triggers import Trigger
from lightning_causal.repair.backdoor import BackdoorSuppressionTerm
from tests.repair.test_repair_plumbing import _HostReads

X = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(0))
Y = torch.tensor([0, 1, 2, 0, 1, 2])


def _term(**options) -> BackdoorSuppressionTerm:
    mask = torch.zeros(1, 4, 4)
    mask[..., :2, :2] = 1
    return BackdoorSuppressionTerm(Trigger(mask, torch.ones(1, 4, 4), target=1), distill_weight=0.0, seed=0, **options)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 3))


@pytest.mark.parametrize("options", [{}, {"balance": True}, {"path": "logit"}])
def test_one_based_labels_are_refused_on_the_first_step_naming_y_and_the_shift(options):
    with pytest.raises(ValueError, match=r"argument `y` to hold class indices in \[0, 2\] for a model of 3 classes .* "
                                         r"but got 3 \(labels 1\.\.3: 1-based\? .*`y - 1`"):
        _term(**options).loss(_model(), X, Y + 1)


def test_a_negative_label_is_refused_on_a_later_step_too():
    term, model = _term(), _model()
    term.loss(model, X, Y)  # the first step: labels in range
    with pytest.raises(ValueError, match=r"argument `y` to hold class indices in \[0, 2\] .* but got -1 \(labels -1\.\.2\)"):
        term.loss(model, X, torch.tensor([0, -1, 2, 0, 1, 2]))


def test_torchs_ignored_label_stays_ignored():
    # -100, cross_entropy's ignore_index: the row's unlearning counts 0, as before
    term, model = _term(), _model()
    ignored = term.loss(model, X, torch.tensor([0, 1, 2, 0, 1, -100]))
    assert torch.isfinite(ignored)


def test_a_step_after_the_first_reads_nothing_back():
    term, model = _term(balance=True), _model()
    term.loss(model, X, Y)  # the first step reads (logits, labels): once
    with _HostReads() as mode:
        term.loss(model, X, Y)
    assert mode.reads == {}
