"""leftovers_s31b: the audits put back the attributes a model's forward sets, but three kinds stayed as the audit's
last pass left them: an attribute the forward creates from nothing (``if not hasattr(self, "calls"): self.calls = 0``,
``self.last_rows = x.shape[0]``), a dict of no tensors updated in place (``self.stats["n"] += rows``) and a 0-d numpy
array (``self.t = np.array(1.0)``, updated in place by ``self.t *= 0.99`` or reassigned). A model that reads them trained
otherwise with ``CausalAuditCallback`` than without it (the callback's dry run made the first ``calls``), and the
model's ``__dict__`` differed after an audit. With the numbers' rule (``audit_mode``, the callback's ``no_trace``, the
repair terms' passes) an attribute the passes created is removed, and a dict of no tensors and a 0-d array are put
back as the numbers are."""

from __future__ import annotations

import copy
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from lightning_causal.audits import UnitImportanceAudit
from lightning_causal.callbacks._no_trace import no_trace
from lightning_causal.callbacks.posthoc import audit_model
from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.kept_attributes import keep_attributes
from lightning_causal.causal.engine.state import audit_mode
from tests.helpers.lightning import SgdMlp, fits_with_and_without_audits


class CountingMlp(SgdMlp):
    """:class:`SgdMlp` whose output is scaled by state its forward keeps: a call count created at the first call, a
    count of rows in a dict, a 0-d array decayed in place and one reassigned (in training; every pass moves them); the
    last batch's rows created too."""

    def __init__(self) -> None:
        super().__init__()
        self.stats = {"rows": 0, "mode": "none"}
        self.decay = np.array(1.0, dtype=np.float32)
        self.temperature = np.array(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not hasattr(self, "calls"):
            self.calls = 0
        self.calls += 1
        self.last_rows = x.shape[0]
        self.stats["rows"] += x.shape[0]
        self.stats["mode"] = "train" if self.training else "eval"
        self.decay *= np.float32(0.99)  # in place: a 0-d array is mutable
        self.temperature = self.temperature * 0.9  # np.float64 from then on
        if not self.training:  # the state moves in every pass, and is read in training only
            return self.net(x)
        scale = 0.99**self.calls * 0.999 ** self.stats["rows"] * float(self.decay) * float(self.temperature)
        return self.net(x) * scale


def _snapshot(model: nn.Module) -> list[dict[str, Any]]:
    """Each module's ``__dict__`` with its plain values copied (``nn.Module``'s own dicts, which hold the parameters,
    buffers and submodules, compared by their keys)."""
    own = {name for name, v in vars(nn.Module()).items() if isinstance(v, dict)}
    return [{k: (list(v) if k in own else copy.deepcopy(v)) for k, v in vars(m).items()} for m in model.modules()]


def _same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    return len(a) == len(b) and all(x.keys() == y.keys() and all(
        type(x[k]) is type(y[k]) and (np.array_equal(x[k], y[k]) if isinstance(x[k], np.ndarray) else x[k] == y[k])
        for k in x) for x, y in zip(a, b))


def test_created_attributes_are_removed_and_dicts_and_0d_arrays_put_back() -> None:
    m = nn.Linear(2, 2)
    m.stats, m.t, m.s = {"n": 1}, np.array(0.5), np.float32(0.5)
    t, stats = m.t, m.stats
    plain, kept = keep_attributes(m), keep_attributes(m, numbers=True)
    m.calls, m.last_rows, m.t2 = 3, 8, np.array(2.0)
    m.stats["n"], m.stats["new"] = 5, "x"
    m.t *= 0.5
    m.s = np.float32(0.25)
    plain.restore()  # without numbers: the tensors' rule only, as before
    assert m.calls == 3 and m.stats == {"n": 5, "new": "x"} and float(m.t) == 0.25
    kept.restore()
    assert not hasattr(m, "calls") and not hasattr(m, "last_rows") and not hasattr(m, "t2")  # before: 3, 8, array(2.)
    assert m.stats is stats and m.stats == {"n": 1}  # before: {'n': 5, 'new': 'x'}
    assert m.t is t and float(m.t) == 0.5 and m.s == np.float32(0.5)  # before: 0.25
    m.t = np.float64(3.0)  # a 0-d array reassigned to a numpy scalar: set back to the very array
    keep_attributes(m, numbers=True).restore()
    assert type(m.t) is np.float64
    kept = keep_attributes(m, numbers=True)
    m.t = np.float64(4.0)
    kept.restore()
    assert m.t == 3.0


def test_what_the_user_registered_before_stays() -> None:
    m = nn.Linear(2, 2)
    m.register_buffer("steps", torch.zeros(()))
    m.extra = nn.Linear(2, 2)
    m.log = [1]
    kept = keep_attributes(m, numbers=True)
    m.note = "set by a pass"
    kept.restore()
    assert isinstance(m.extra, nn.Linear) and "steps" in m._buffers and m.log == [1] and not hasattr(m, "note")


def test_an_estimator_audit_mode_and_no_trace_leave_the_dict_of_every_module_equal() -> None:
    torch.manual_seed(0)
    model = CountingMlp().train()
    model(torch.randn(16, 5))
    before = _snapshot(model)
    with audit_mode(model):
        model(torch.randn(4, 5))
    assert _same(_snapshot(model), before)
    input_effects(model, torch.randn(8, 5), target=0)
    assert _same(_snapshot(model), before)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audit_model(model, [UnitImportanceAudit(["net.0"])], torch.randn(8, 5))
    assert _same(_snapshot(model), before)
    with no_trace(model):
        model(torch.randn(4, 5))
    assert _same(_snapshot(model), before)
    fresh = CountingMlp()
    with audit_mode(fresh):
        fresh(torch.randn(4, 5))
    assert not hasattr(fresh, "calls") and not hasattr(fresh, "last_rows")  # before: 1, 4


def test_a_fit_with_the_callback_trains_as_the_fit_without_it() -> None:
    audited, plain = fits_with_and_without_audits(CountingMlp)  # before: net.0.weight differs (the dry run made `calls`)
    assert audited.calls == plain.calls and audited.stats == plain.stats
    assert float(audited.decay) == float(plain.decay) and audited.temperature == plain.temperature
