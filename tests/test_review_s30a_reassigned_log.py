"""A log the forward reassigns rather than appends to (``self.scales = self.scales + [float(x.std())]``; the shape last
seen, ``self.seen = tuple(x.shape)``) was neither named by ``KeptAttributes.changes`` nor put back by ``restore``, which
since 8177a081 gave a list appended to its items back whatever they are: ``audit_model`` of a model whose forward reads
its log (logits divided by a temperature the count of passes logged anneals) refused it as depending on the batch (the
sample-independence check's passes each saw the others' entries) and left 5 more entries in the log, where the same
model appending to its log passed and was left as found. A list or tuple of no tensors reassigned is now named and set
back to the very object."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks.posthoc import audit_model
from lightning_causal.causal.engine.kept_attributes import keep_attributes
from tests.helpers.lightning import SgdMlp, fits_with_and_without_audits


class ReassigningMlp(SgdMlp):
    """:class:`SgdMlp` that logs each pass by reassigning its log, and divides its logits by a temperature that the
    count of passes logged anneals."""

    def __init__(self) -> None:
        super().__init__()
        self.scales: list[float] = []
        self.seen: tuple[int, ...] = ()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.scales = self.scales + [float(x.std())]
        self.seen = tuple(x.shape)
        return self.net(x) / (1.0 + 1.0 / len(self.scales))


def test_a_list_or_tuple_reassigned_is_named_and_set_back() -> None:
    m = nn.Linear(2, 2)
    m.log, m.seen, m.none = [1.0], (4, 2), None
    log, seen = m.log, m.seen
    kept = keep_attributes(m)
    m.log, m.seen, m.none, m.new = m.log + [2.0], (8, 2), ["a"], ("b",)
    assert sorted(kept.changes(m)) == [("log", (), True), ("new", (), True), ("none", (), True), ("seen", (), True)]
    kept.restore()  # before: changes [], and nothing put back
    assert m.log is log and m.seen is seen and m.none is None and not hasattr(m, "new")
    assert kept.changes(m) == []


def test_audit_model_leaves_a_reassigned_log_as_it_was() -> None:
    torch.manual_seed(0)
    model = ReassigningMlp()
    model(torch.randn(4, 5))
    before = (model.scales, model.seen)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit_model(model, [InputEffectAudit(ace_values=None)], torch.randn(16, 5))  # before: refused, 'Expected the model
    assert (model.scales, model.seen) == before  # to treat samples independently'; 5 more entries


def test_a_fit_with_the_callback_trains_and_logs_as_the_fit_without_it() -> None:
    audited, plain = fits_with_and_without_audits(ReassigningMlp)
    assert audited.scales == plain.scales and audited.seen == plain.seen  # before: other entries, the probe's shape


def test_an_rnns_flat_weights_are_left_to_torch() -> None:
    rnn = nn.GRU(3, 4)
    kept = keep_attributes(rnn)
    rnn(torch.randn(5, 2, 3))
    assert kept.changes(rnn) == []
    kept.restore()
    assert [w is p for w, p in zip(rnn._flat_weights, rnn.parameters())] == [True] * 4
