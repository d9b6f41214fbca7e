"""The steps of one audit of an audit epoch, shared by :class:`~lightning_causal.callbacks._audit_run.AuditRun`
(a fit's audit epoch) and :func:`~lightning_causal.callbacks.posthoc.audit_model` (one outside ``fit``): the run
without a trace on the model (:func:`run_audit`), what the epoch adds to its result (:func:`finish_result`) and the
vectors the next drift compares with (:func:`drift_base`)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from lightning_causal.audits.base import Audit, AuditResult, Probe
from lightning_causal.audits.drift import vector_drift
from lightning_causal.callbacks._explain import audited_view
from lightning_causal.callbacks._no_trace import audit_seed, hooks_removed
from lightning_causal.callbacks._result_checks import checked_result
from lightning_causal.callbacks._warnings import noise_notes

__all__ = ["drift_base", "finish_result", "run_audit"]


def run_audit(audit: Audit, model: torch.nn.Module, probe: Probe, position: int | None, max_batch_size: int | None,
              notes: list[str]) -> AuditResult:
    """Run ``audit`` on ``probe`` (the input ``position`` explained, :func:`~lightning_causal.callbacks._explain.audited_view`)
    from the global generators seeded as every audit (:func:`~lightning_causal.callbacks._no_trace.audit_seed`: a model's
    own noise, the same draws at every audit of the same weights), with no hook of it left on ``model``
    (:func:`~lightning_causal.callbacks._no_trace.hooks_removed`), appending to ``notes`` what the model's noise means
    for its numbers (:func:`~lightning_causal.callbacks._warnings.noise_notes`); the result checked
    (:func:`~lightning_causal.callbacks._result_checks.checked_result`). The caller holds ``model`` in
    :func:`~lightning_causal.callbacks._no_trace.no_trace`."""
    with audit_seed(), noise_notes(notes), hooks_removed(model, f"Audit {audit.name!r}"):
        return checked_result(audit, audit.run(*audited_view(audit, model, probe, position), max_batch_size=max_batch_size))


def finish_result(audit: Audit, result: AuditResult, notes: list[str], *, epoch: int, seconds: float,
                  previous: dict[str, torch.Tensor], warn: Callable[[str], None]) -> AuditResult:
    """Add to ``result`` of ``audit`` what an audit epoch adds: ``meta`` ``epoch``, ``seconds``, the ``notes`` of
    :func:`run_audit` and the explained ``output`` (a name or an index), the ``drift/<vector>/*`` scalars against
    ``previous`` (:func:`~lightning_causal.audits.drift.vector_drift`; ``{}``: none) and, where its values hold NaN or
    infinity, ``warn("produced NaN or infinite values in [...]; <its notes>")`` and the note
    ``"non-finite values in [...]"``. Returns ``result``."""
    result.meta.update(epoch=epoch, seconds=seconds)
    if notes:  # what a model's own noise means for the numbers, on the card and in the report
        result.meta.setdefault("notes", []).extend(notes)
    if isinstance(audit.output, (str, int)) and not isinstance(audit.output, bool):  # the head of several outputs explained
        result.meta["output"] = audit.output
    result.scalars.update(vector_drift(previous, result.vectors))
    bad = result.non_finite()
    if bad:
        why = "".join(f"; {note}" for note in result.meta.get("notes", []))  # the audit's own explanation, if any
        warn(f"produced NaN or infinite values in {bad}{why}")
        result.meta.setdefault("notes", []).append(f"non-finite values in {bad}")
    return result


def drift_base(result: AuditResult) -> dict[str, torch.Tensor]:
    """The 1-D vectors of ``result`` (detached, on the CPU) that the next drift compares with (:func:`finish_result`'s
    ``previous``)."""
    return {k: v.detach().cpu() for k, v in result.vectors.items() if v.dim() == 1}
