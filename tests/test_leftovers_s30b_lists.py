"""A list attribute that the forward appends other things than tensors to (a log of numbers,
``self.scales.append(float(x.std()))``; strings; dicts of numbers) was named by ``KeptAttributes.changes`` but not put
back by ``restore``, which gave back the items of lists of tensors only: ``audit_model`` left 12 more entries in such a
log; of a model whose forward reads its log (a temperature annealed by the passes seen) it refused the model as
depending on the batch (the sample-independence check's passes each saw the others' entries), and a fit with
``CausalAuditCallback`` trained otherwise than the same fit without it (29 entries against 12, max |dw| 6.7e-2). Every
list the passes changed now gets its items back."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks.posthoc import audit_model
from lightning_causal.causal.engine.kept_attributes import keep_attributes
from tests.helpers.lightning import SgdMlp, fits_with_and_without_audits


class LoggingMlp(SgdMlp):
    """:class:`SgdMlp` that logs each pass (a number, a dict of numbers) and divides its logits by a temperature that
    the count of passes logged anneals."""

    def __init__(self) -> None:
        super().__init__()
        self.scales: list[float] = []
        self.notes: list[dict[str, int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.scales.append(float(x.std()))
        self.notes.append({"rows": x.shape[0]})
        return self.net(x) / (1.0 + 1.0 / len(self.scales))


def test_restore_gives_back_the_items_of_lists_of_numbers_strings_and_dicts() -> None:
    m = nn.Linear(2, 2)
    first = {"m": 0.5}
    m.log, m.names, m.stats, m.cache = [1.0], ["a"], [first], {"seen": []}
    kept = keep_attributes(m)
    m.log.append(2.0)
    m.names.append("b")
    m.stats.append({"m": 1.5})
    m.cache["seen"].append("pass")
    assert sorted(kept.changes(m)) == [("cache['seen']", (), True), ("log", (), True), ("names", (), True),
                                       ("stats", (), True)]
    kept.restore()
    assert (m.log, m.names, m.cache["seen"]) == ([1.0], ["a"], [])  # before: [1.0, 2.0], ['a', 'b'], ['pass']
    assert len(m.stats) == 1 and m.stats[0] is first
    assert kept.changes(m) == []


def test_audit_model_leaves_a_log_of_numbers_as_it_was() -> None:
    torch.manual_seed(0)
    model = LoggingMlp()
    model(torch.randn(4, 5))
    before = (list(model.scales), list(model.notes))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit_model(model, [InputEffectAudit(ace_values=None)], torch.randn(16, 5))
    assert (model.scales, model.notes) == before  # before: refused, 'Expected the model to treat samples independently'


def test_a_fit_with_the_callback_trains_and_logs_as_the_fit_without_it() -> None:
    audited, plain = fits_with_and_without_audits(LoggingMlp)  # before: weights apart by max |dw| 6.7e-2
    assert audited.scales == plain.scales and audited.notes == plain.notes  # before: 29 entries against 12
