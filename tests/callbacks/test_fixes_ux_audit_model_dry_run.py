"""``audit_model(model, audits=[...], data)`` ran every audit in full in turn: a wrong option of the last audit (a layer
the model does not have) failed only after the others had run on the whole probe. It now validates and dry-runs every
audit first (the callback's :func:`~lightning_causal.callbacks._probe_setup.dry_run`, 2 probe samples, state restored),
as the callback does before a fit's first audit; the error is the audit's own, as a full run's, with a note naming it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.audits import AuditResult, LayerMapAudit, Probe
from lightning_causal.audits.base import Audit
from lightning_causal.callbacks import audit_model


class _Rows(Audit):
    """Records the number of probe rows of every run."""

    def __init__(self) -> None:
        super().__init__("rows")
        self.runs: list[int] = []

    def run(self, model: nn.Module, probe: Probe, *, max_batch_size: int | None = None) -> AuditResult:
        self.runs.append(len(probe))
        return AuditResult(self.name, scalars={"rows": float(len(probe))})


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))


def test_a_wrong_layer_in_the_last_audit_fails_before_the_first_runs_in_full():
    rows = _Rows()
    with pytest.raises(ValueError, match=r"Unknown module name 'nope'") as caught:
        audit_model(_model(), [rows, LayerMapAudit(layers=["nope"])], torch.rand(16, 4))
    assert rows.runs == [2]  # its dry run only: the full run (16 rows) never started
    assert caught.value.__notes__ == ["Raised by audit 'layer_map' of audit_model (its dry run on 2 probe samples, before "
                                      "any audit ran in full)"]


def test_a_good_set_of_audits_runs_each_audit_once_in_full_after_its_dry_run():
    rows = _Rows()
    results = audit_model(_model(), [rows], torch.rand(16, 4))
    assert rows.runs == [2, 16] and results[0].scalars["rows"] == 16.0


class _Stateful(_Rows):
    """Keeps a count between runs (as CausalGraphAudit keeps its last graph)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def run(self, model: nn.Module, probe: Probe, *, max_batch_size: int | None = None) -> AuditResult:
        self.count += 1
        return super().run(model, probe)

    def state_dict(self) -> dict:
        return {"count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.count = state.get("count", 0)


def test_the_dry_run_leaves_the_audits_state_as_found():
    audit = _Stateful()
    audit_model(_model(), [audit], torch.rand(16, 4))
    assert audit.count == 1 and audit.runs == [2, 16]  # the full run's count only


class _Chained(_Rows):
    """Fails on every run with a ValueError raised from a KeyError (explicitly) and one raised inside its handler."""

    def __init__(self, explicit: bool) -> None:
        super().__init__()
        self.explicit = explicit

    def run(self, model: nn.Module, probe: Probe, *, max_batch_size: int | None = None) -> AuditResult:
        try:
            {}["key"]
        except KeyError as err:
            if self.explicit:
                raise ValueError("chained") from err
            raise ValueError("chained")  # noqa: B904 - implicitly chained on purpose
        raise AssertionError("unreachable")


@pytest.mark.parametrize("explicit", [True, False])
def test_the_dry_runs_error_keeps_its_own_chain_as_a_full_runs(explicit):
    """Review of a9bde62: the audit's error was raised ``from None``, which erased the cause it was raised from (a full
    run's error keeps it); implicitly chained, its context became the wrapping MisconfigurationException."""
    with pytest.raises(ValueError, match="chained") as caught:
        audit_model(_model(), [_Chained(explicit)], torch.rand(16, 4))
    error = caught.value
    if explicit:
        assert isinstance(error.__cause__, KeyError) and error.__suppress_context__
    else:
        assert error.__cause__ is None and isinstance(error.__context__, KeyError) and not error.__suppress_context__
