"""An out-of-memory retry is remembered for the rest of an audit (remembered_fit): its later computations start at
the share of their rows that fit instead of failing at full size again, with one warning; the next audit starts at
full size. Same values."""

import warnings
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from lightning_causal._compat import OutOfMemoryError
from lightning_causal.audits.base import Audit, AuditResult, Probe
from lightning_causal.callbacks._one_audit import run_audit
from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.batching import map_rows, remembered_fit
from lightning_causal.causal.engine.state import audit_mode
from tests.helpers.out_of_memory import failing_above

CPU = torch.device("cpu")


def _run(*calls):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        outs = [map_rows(total, rows, fn, CPU) for total, rows, fn in calls]
    return outs, [w for w in seen if "out of memory" in str(w.message)]


def test_later_computations_of_a_block_start_at_the_share_that_fit_and_warn_once():
    fn, calls = failing_above(3)
    with remembered_fit():
        outs, warned = _run((11, 8, fn), (11, 8, fn), (11, 16, fn))
    assert calls == [8, 4, 2, 2, 2, 2, 2, 1,  # 8 -> 2 fit: a quarter of the rows asked for
                     2, 2, 2, 2, 2, 1,  # the second computation starts at 2, no failed pass
                     4, 2, 2, 2, 2, 2, 1]  # asked 16: a quarter is 4, too many still: halved again, once
    assert all(torch.equal(o, torch.arange(11).double() * 10) for o in outs)
    assert len(warned) == 1 and "pass of 8 rows" in str(warned[0].message)


def test_the_next_block_and_calls_outside_any_block_start_at_full_size():
    fn, calls = failing_above(3)
    with remembered_fit():
        _run((4, 4, fn))
    calls.clear()
    with remembered_fit():
        _, warned = _run((4, 4, fn))
    assert calls[0] == 4 and len(warned) == 1
    calls.clear()
    _, warned = _run((4, 4, fn), (4, 4, fn))  # outside a block each call is its own: as before
    assert calls == [4, 2, 2, 4, 2, 2] and len(warned) == 2


def test_a_share_learnt_on_one_device_does_not_shrink_another_device_s_passes():
    fn, calls = failing_above(3)
    on_meta = []
    with remembered_fit():
        _run((8, 8, fn))
        map_rows(8, 8, lambda idx: on_meta.append(idx.numel()) or idx.double(), torch.device("meta"))
    assert calls == [8, 4, 2, 2, 2, 2] and on_meta == [8]


class _Tight(nn.Module):
    """A model whose passes of more than ``limit`` rows fail as a full device would; it counts the failed ones."""

    def __init__(self, limit):
        super().__init__()
        self.fc, self.limit, self.tally = nn.Linear(6, 3), limit, SimpleNamespace(failed=0)

    @property
    def failed(self) -> int:
        """The failed passes, counted in a namespace: a number attribute is put back by ``audit_mode`` as the model's state."""
        return self.tally.failed

    def forward(self, x):
        if x.shape[0] > self.limit:
            self.tally.failed += 1
            raise OutOfMemoryError(f"CUDA out of memory: {x.shape[0]} rows")
        return self.fc(x)


class _TwoEffects(Audit):
    """An audit of two computations (two estimator calls, each in its own audit_mode)."""

    def run(self, model, probe, *, max_batch_size=None):
        a = input_effects(model, probe.inputs, target=1, max_batch_size=max_batch_size)
        b = input_effects(model, probe.inputs, target=2, max_batch_size=max_batch_size)
        return AuditResult(self.name, vectors={"a": a.mean(0), "b": b.mean(0)})


@pytest.fixture
def models():
    torch.manual_seed(0)
    free, tight = _Tight(10**6), _Tight(12)  # the clean pass of 12 samples fits; chunks of 72 rows do not
    tight.load_state_dict(free.state_dict())
    return free, tight


def test_an_audit_in_the_callback_fails_one_pass_and_warns_once(models):
    free, tight = models
    x = torch.randn(12, 6)
    expected = _TwoEffects().run(free, Probe(x), max_batch_size=72)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        got = run_audit(_TwoEffects(), tight, Probe(x), None, 72, [])
    assert tight.failed == 3  # 72 -> 36 -> 18 -> 9 fit, then never again
    assert len([w for w in seen if "out of memory" in str(w.message)]) == 1
    for k in ("a", "b"):
        torch.testing.assert_close(got.vectors[k], expected.vectors[k])


def test_computations_inside_one_audit_mode_share_what_fit(models):
    _, tight = models
    x = torch.randn(12, 6)
    with warnings.catch_warnings(record=True) as seen, audit_mode(tight):
        warnings.simplefilter("always")
        input_effects(tight, x, target=1, max_batch_size=72)
        input_effects(tight, x, target=2, max_batch_size=72)
    assert tight.failed == 3 and len([w for w in seen if "out of memory" in str(w.message)]) == 1


def test_the_warning_speaks_of_later_computations_only_where_a_block_remembers_the_share():
    fn, _ = failing_above(3)
    with remembered_fit():
        _, inside = _run((4, 4, fn))
    _, outside = _run((4, 4, fn))  # outside any block the next call starts at full size: nothing to tell of
    assert "later computations start at the same share" in str(inside[0].message)
    assert "later computations" not in str(outside[0].message)
