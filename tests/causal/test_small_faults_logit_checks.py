"""``check_logits`` (each pass of an estimator calls it on the explained outputs) computed the evidential-outputs
statistics (every entry at least 1, the median of the rows' smallest entries below 2) at every pass, also after its
block (an audit, an ``audit_mode``) had already warned of them and would say nothing more: it asks the block first
now (``said_in_block``), and computes them only while the block has not warned."""

from __future__ import annotations

import warnings

import pytest
import torch

from lightning_causal.causal.engine.batching import first_in_block, remembered_fit, said_in_block
from lightning_causal.causal.engine.state import check_logits

# Dirichlet concentrations alpha = evidence + 1: every entry >= 1, each row's smallest below 2
ALPHA = torch.tensor([[10.0, 1.0, 1.0], [1.2, 7.0, 1.0], [1.0, 1.5, 4.0], [3.0, 1.1, 1.0]])


def _counted_medians(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    median = torch.Tensor.median

    def counted(self, *args, **kwargs):  # noqa: ANN001, ANN202
        calls[0] += 1
        return median(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "median", counted)
    return calls


def test_the_statistics_are_computed_once_per_block_and_warned_once(monkeypatch):
    calls = _counted_medians(monkeypatch)
    with warnings.catch_warnings(record=True) as seen, remembered_fit():
        warnings.simplefilter("always")
        for _ in range(5):  # five passes of one audit
            assert check_logits(ALPHA, "FairnessAudit") is ALPHA
    assert [str(w.message).startswith("Every entry of the model's output [N, 3] is at least 1") for w in seen] == [True]
    assert calls[0] == 1  # 5 before: once per pass


def test_a_pass_that_does_not_warn_leaves_the_warning_to_a_later_one(monkeypatch):
    """The question asked first records nothing: a first pass of logits (no warning) does not silence a later pass
    of concentrations in the same block; outside any block every call checks and warns."""
    calls = _counted_medians(monkeypatch)
    logits = ALPHA.log() - 1.0  # entries below 1
    with warnings.catch_warnings(record=True) as seen, remembered_fit():
        warnings.simplefilter("always")
        check_logits(logits, "it")
        check_logits(ALPHA, "it")
        check_logits(ALPHA, "it")
    assert len(seen) == 1 and calls[0] == 1  # the logits fail the cheaper test first: no median
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        check_logits(ALPHA, "it")
        check_logits(ALPHA, "it")
    assert len(seen) == 2 and calls[0] == 3


def test_said_in_block_records_nothing():
    assert not said_in_block("k")
    with remembered_fit():
        assert not said_in_block("k") and not said_in_block("k")
        assert first_in_block("k")
        assert said_in_block("k") and not first_in_block("k")
    assert not said_in_block("k")
