"""``ReversedTriggers.most_suspect`` where every class is left out of Neural Cleanse's comparison (a class-incremental
model at its first task: one class predicted for every input, the others ruled out with -inf) answered a left-out
class, whose mask measures no trigger, though ``BackdoorSuppressionTerm`` suppresses nothing there since 27e9f1c2;
``BackdoorAudit``'s ``top_class`` scalar read it. It now answers ``None`` (the audit's ``top_class`` NaN), and never a
left-out class where some class is compared (leftovers_s32b)."""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from lightning_causal.audits import BackdoorAudit, Probe
from lightning_causal.causal.backdoor.flagging import ReversedTriggers
from lightning_causal.causal.backdoor.triggers import Trigger


def _result(**left_out: list[int]) -> ReversedTriggers:
    norms = torch.tensor([0.01, 2.0, 3.0, 4.0])  # class 0's mask smallest: it would rank first
    return ReversedTriggers([Trigger(torch.zeros(2), 0.0, c) for c in range(4)], torch.zeros(4), norms, torch.ones(4),
                            torch.ones(4), max_ratio=0.75, **left_out)


def test_every_class_left_out_answers_none() -> None:
    assert _result(unattacked=[0], ruled_out=[1, 2, 3]).most_suspect is None
    assert _result(ruled_out=[0, 1, 2, 3]).most_suspect is None


def test_a_class_compared_is_answered_and_never_a_left_out_one() -> None:
    assert _result(unattacked=[0], ruled_out=[1, 2]).most_suspect == 3  # the one compared
    assert _result(unattacked=[0]).most_suspect == 1  # ratios 2/3, 1, 4/3 of classes 1-3: class 1 lowest


class _OneSeen(nn.Module):
    """Class 0 for every input, classes 1-3 ruled out with -inf."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).index_fill(1, torch.tensor([1, 2, 3]), float("-inf"))


def test_the_audit_top_class_is_nan_where_every_class_is_left_out() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = BackdoorAudit(steps=20).run(_OneSeen(), Probe(torch.randn(32, 6, generator=torch.Generator().manual_seed(0))))
    assert result.scalars["flagged_count"] == 0.0 and math.isnan(result.scalars["top_class"])  # was 0.0
