"""Review of db112aca: a list or tuple of no tensors that the forward reassigns is set back after the audits'
passes, but only where its type is ``list`` or ``tuple`` itself: the shape last seen kept as the ``torch.Size`` a
forward has at hand (``self.seen = x.shape``, not ``tuple(x.shape)``) or as a named tuple was left at the audit's
probe shape. A model that starts its carried state afresh when the batch's shape changes then started it afresh at
the step after each audit, and a fit with ``CausalAuditCallback`` trained otherwise than the same fit without it.
Tuple and list subclasses holding no tensor are now set back as plain ones are."""

from __future__ import annotations

import warnings
from collections import namedtuple

import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks.posthoc import audit_model
from lightning_causal.causal.engine.kept_attributes import keep_attributes
from tests.helpers.lightning import SgdMlp, fits_with_and_without_audits

Seen = namedtuple("Seen", "rows cols")


class ShapeResetMlp(SgdMlp):
    """:class:`SgdMlp` that carries the mean of its inputs across batches (added to its input), started afresh where the
    batch's shape is not the last one seen or in eval mode (``self.seen = x.shape``, a ``torch.Size``)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: torch.Size | None = None
        self.named: Seen | None = None
        self.carried = torch.zeros(5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # read in training only, and the mean of earlier batches only: an eval pass that read it, or an output that
        # read this batch's mean, would be refused (the audits explain an input alone; both passed before newuser86)
        carried = self.carried if self.training and self.seen == x.shape else torch.zeros(5)
        self.carried = (0.5 * carried + 0.5 * x.mean(0)).detach()
        self.seen, self.named = x.shape, Seen(*x.shape)
        return self.net(x + carried)


def test_a_size_and_a_named_tuple_reassigned_are_set_back() -> None:
    m = nn.Linear(2, 2)
    m.seen, m.named = torch.Size([4, 2]), Seen(4, 2)
    seen, named = m.seen, m.named
    kept = keep_attributes(m)
    m(torch.randn(8, 2))
    m.seen, m.named = torch.Size([8, 2]), Seen(8, 2)
    assert sorted(kept.changes(m)) == [("named", (), True), ("seen", (), True)]  # before: []
    kept.restore()
    assert m.seen is seen and m.named is named  # before: torch.Size([8, 2]), Seen(rows=8, cols=2)


def test_audit_model_leaves_the_shape_seen_as_it_was() -> None:
    torch.manual_seed(0)
    model = ShapeResetMlp()
    model(torch.randn(4, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit_model(model, [InputEffectAudit(ace_values=None)], torch.randn(16, 5))
    assert model.seen == torch.Size([4, 5]) and model.named == Seen(4, 5)  # before: a row count of the audit's passes


def test_a_fit_with_the_callback_trains_as_the_fit_without_it() -> None:
    audited, plain = fits_with_and_without_audits(ShapeResetMlp)  # before: its weights differ, the step after each
    assert audited.seen == plain.seen and torch.equal(audited.carried, plain.carried)  # audit started the mean afresh
