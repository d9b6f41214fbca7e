"""The steps of one audit of an audit epoch, shared by :class:`~lightning_causal.callbacks._audit_run.AuditRun`
(a fit's audit epoch) and :func:`~lightning_causal.callbacks.posthoc.audit_model` (one outside ``fit``): the run
without a trace on the model (:func:`run_audit`), what the epoch adds to its result (:func:`finish_result`) and the
vectors the next drift compares with (:func:`drift_base`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import torch

from lightning_causal._optimizers import HALF_EPS
from lightning_causal.audits.base import Audit, AuditResult, Probe
from lightning_causal.audits.drift import (
    ENTRIES,
    changed_entries,
    changed_note,
    entry_codes,
    resized_note,
    resized_vectors,
    vector_drift,
)
from lightning_causal.audits.logit_reads import outputs_judged
from lightning_causal.callbacks._explain import audited_view
from lightning_causal.callbacks._no_trace import audit_seed, hooks_removed
from lightning_causal.callbacks._result_checks import checked_result
from lightning_causal.callbacks._warnings import noise_notes
from lightning_causal.causal.engine.batching import is_out_of_memory, kinds_about, remembered_fit

__all__ = ["drift_base", "failure_hint", "finish_result", "non_finite_weights", "optimizer_eps", "run_audit"]


def run_audit(audit: Audit, model: torch.nn.Module, probe: Probe, position: int | None, max_batch_size: int | None,
              notes: list[str], said: list[str] | None = None) -> AuditResult:
    """Run ``audit`` on ``probe`` (the input ``position`` explained, :func:`~lightning_causal.callbacks._explain.audited_view`)
    from the global generators seeded as every audit (:func:`~lightning_causal.callbacks._no_trace.audit_seed`: a model's
    own noise, the same draws at every audit of the same weights), with no hook of it left on ``model``
    (:func:`~lightning_causal.callbacks._no_trace.hooks_removed`), appending to ``notes`` what the model's noise means
    for its numbers (:func:`~lightning_causal.callbacks._warnings.noise_notes`) and, to ``said`` where given, the text of
    every warning it passed on that no filter of the user's hid; the result checked
    (:func:`~lightning_causal.callbacks._result_checks.checked_result`). The caller holds ``model`` in
    :func:`~lightning_causal.callbacks._no_trace.no_trace`. A pass that runs the device out of memory is remembered for
    the audit's later computations, and warned of once (:func:`~lightning_causal.causal.engine.batching.remembered_fit`).
    The caller judges whether the outputs read as logits, for all its audits in one pass (the callback's
    ``warn_outputs_read_as_logits``, ``audit_model``'s ``check_probe_outputs``): the run does not again
    (:func:`~lightning_causal.audits.logit_reads.outputs_judged`)."""
    # its outputs judged by the caller, for all its audits in one pass (warn_outputs_read_as_logits, check_probe_outputs)
    with (audit_seed(), noise_notes(notes, said), hooks_removed(model, f"Audit {audit.name!r}"), remembered_fit(),
          outputs_judged(), kinds_about(f"Audit {audit.name!r}")):  # its figured warnings once per fit, each audit's
        return checked_result(audit, audit.run(*audited_view(audit, model, probe, position), max_batch_size=max_batch_size))


def finish_result(audit: Audit, result: AuditResult, notes: list[str], *, epoch: int, seconds: float,
                  previous: dict[str, torch.Tensor], warn: Callable[[str], None],
                  model: torch.nn.Module | None = None, said: Sequence[str] = (), eps: float | None = None) -> AuditResult:
    """Add to ``result`` of ``audit`` what an audit epoch adds: ``meta`` ``epoch``, ``seconds``, the ``notes`` of
    :func:`run_audit` and the explained ``output`` (a name or an index), the ``drift/<vector>/*`` scalars against
    ``previous`` (:func:`~lightning_causal.audits.drift.vector_drift`; ``{}``: none; a vector whose length changed since, a
    model changed between the audits, gets none, ``meta["resized_vectors"]`` and a note that say so: :func:`~lightning_causal.audits.drift.resized_vectors`;
    so does one whose entries named in ``meta["vector_entries"]`` are other ones in the same number, with
    ``meta["changed_entries"]``: :func:`~lightning_causal.audits.drift.changed_entries`) and, where its values hold NaN or
    infinity, ``warn("produced NaN or infinite values in [...]; <its notes>")`` and the note
    ``"non-finite values in [...]"``, with the parameters and buffers of the audited ``model`` that hold NaN or
    infinity named in both (:func:`non_finite_weights`: weights that diverged in training, not the audit, made
    them), the notes that a warning in ``said`` (the audit's own, shown already: :func:`run_audit`) holds left out of
    the warning, which says so; where only the weights are non-finite (finite values of a broken model: a counterfactual search that found
    none), ``warn("ran on a model it cannot explain: <which weights>")`` and that note; ``eps``: the fit's optimizers' smallest
    ``eps`` (:func:`optimizer_eps`), which decides whether float16 weights' divergence is blamed on it. Returns ``result``."""
    result.meta.update(epoch=epoch, seconds=seconds)
    if notes:  # what a model's own noise means for the numbers, on the card and in the report
        result.meta.setdefault("notes", []).extend(notes)
    if isinstance(audit.output, (str, int)) and not isinstance(audit.output, bool):  # the head of several outputs explained
        result.meta["output"] = audit.output
    other = changed_entries(previous, result.meta.get("vector_entries") or {})  # named entries, other ones than before
    result.scalars.update(vector_drift(previous, {k: v for k, v in result.vectors.items() if k not in other}))
    if resized := resized_vectors(previous, result.vectors):  # the card and the report say why the drift series pauses
        result.meta["resized_vectors"] = resized  # read by the monitors of a drift scalar (AuditEarlyStopping)
        result.meta.setdefault("notes", []).extend(resized_note(name, lengths) for name, lengths in resized.items())
    if other:
        result.meta["changed_entries"] = other  # as resized_vectors, for the monitors
        result.meta.setdefault("notes", []).extend(changed_note(name, names) for name, names in other.items())
    bad = result.non_finite()
    weights = non_finite_weights(model, eps=eps) if model is not None else ""
    if bad:
        own = result.meta.get("notes", [])  # the audit's own explanation, if any, unless its own warning said it
        kept = [note for note in own if not any(note in text for text in said)]
        why = "".join(f"; {note}" for note in kept) + ("; the audit's warning above says why" if len(kept) < len(own) else "")
        warn(f"produced NaN or infinite values in {bad}{why}{'; ' + weights if weights else ''}")
        result.meta.setdefault("notes", []).append(f"non-finite values in {bad}{' (' + weights + ')' if weights else ''}")
    elif weights:  # finite numbers of a broken model (a counterfactual search that found none): as little to trust
        warn(f"ran on a model it cannot explain: {weights}")
        result.meta.setdefault("notes", []).append(weights)
    return result


def non_finite_weights(model: torch.nn.Module, most: int = 3, eps: float | None = None) -> str:
    """A sentence naming the floating parameters of ``model`` that hold NaN or infinity and its buffers that hold NaN (the first
    ``most`` of them and how many more), ``""`` where none does: an audit of weights that diverged in training
    reports non-finite values that no setting of the audit changes. Where non-finite weights are float16 it names Adam's
    default ``eps`` (0 in float16) as a cause, unless ``eps``, the fit's optimizers' smallest (:func:`optimizer_eps`), is
    known to be at least :data:`~lightning_causal._optimizers.HALF_EPS` (a ``LightningClassifier``'s or a
    ``CausalRepairModule``'s over float16 weights) or their optimizers hold no ``eps`` (SGD: ``inf``).

    Examples:
        >>> net = torch.nn.Linear(2, 1)
        >>> non_finite_weights(net)
        ''
        >>> with torch.no_grad():
        ...     net.weight[0, 1] = float("nan")
        >>> non_finite_weights(net)
        "the model's weights hold NaN or infinite values (weight): training diverged before this audit (a learning rate too high, a loss of log(0))"
        >>> causal = torch.nn.Module()
        >>> causal.register_buffer("mask", torch.full((3, 3), float("-inf")).triu(1))  # infinite by design
        >>> non_finite_weights(causal)
        ''
    """
    # a buffer may hold infinity by design (an attention mask of -inf above the diagonal): of buffers, NaN only
    checks = [*((name, _local(p), lambda t: ~torch.isfinite(t).all()) for name, p in model.named_parameters()),
              *((name, _local(b), lambda t: torch.isnan(t).any()) for name, b in model.named_buffers())]
    flags: dict[torch.device, list[tuple[str, torch.Tensor]]] = {}
    for name, t, test in checks:  # not a meta skeleton's (no values); one synchronisation per device
        if t.is_floating_point() and not t.is_meta and t.numel():
            flags.setdefault(t.device, []).append((name, test(t.detach())))
    found = {name for pairs in flags.values() for (name, _), hit in zip(pairs, torch.stack([f for _, f in pairs]).tolist()) if hit}
    bad = [name for name, _, _ in checks if name in found]
    if not bad:
        return ""
    more = f" and {len(bad) - most} more" if len(bad) > most else ""
    half = any(t.dtype == torch.float16 for name, t, _ in checks if name in found) and not (eps is not None and eps >= HALF_EPS)
    return (f"the model's weights hold NaN or infinite values ({', '.join(bad[:most])}{more}): training diverged before "
            f"this audit (a learning rate too high, a loss of log(0){_HALF_ADAM if half else ''})")


#: why float16 weights diverge under Adam from the first step (a float16 MLP under Lightning's ``"16-true"``:
#: NaN at step 0 with eps=1e-8, finite after 50 steps with eps=1e-4), said where the optimizer's eps is not known to be larger
_HALF_ADAM = ("; if the optimizer keeps torch's default eps: float16 weights, `precision='16-true'` or `model.half()`, "
              "under Adam or AdamW at `eps=1e-8`, which is 0 in float16, step by 0/0 or m/0 where a gradient squares to 0 "
              "there (below about 2e-4), from the first step; give the optimizer `eps=1e-4`, or train in `'bf16-mixed'` or "
              "`'32-true'`")


def optimizer_eps(trainer: object) -> float | None:
    """The smallest ``eps`` of the param groups of ``trainer``'s optimizers (Adam's, AdamW's, RMSprop's), ``inf`` where
    they hold none (SGD), ``None`` where no optimizer is reachable (no trainer, none built: ``audit_model``, a validation
    run).

    Examples:
        >>> from types import SimpleNamespace
        >>> net = torch.nn.Linear(2, 1)
        >>> optimizer_eps(SimpleNamespace(optimizers=[torch.optim.Adam(net.parameters(), eps=1e-4)]))
        0.0001
        >>> optimizer_eps(SimpleNamespace(optimizers=[torch.optim.SGD(net.parameters(), lr=0.1)]))
        inf
        >>> optimizer_eps(SimpleNamespace(optimizers=[])) is None
        True
    """
    optimizers = list(getattr(trainer, "optimizers", None) or [])
    if not optimizers:
        return None
    found = [float(group["eps"]) for opt in optimizers for group in getattr(opt, "param_groups", ())
             if isinstance(group.get("eps"), (int, float))]
    return min(found, default=float("inf"))


def _local(t: torch.Tensor) -> torch.Tensor:
    """This process's part of a sharded tensor (a ``DTensor``'s ``to_local()``: no collective), else ``t``."""
    to_local = getattr(t, "to_local", None)
    return to_local() if callable(to_local) else t


_FORWARD = os.path.join("causal", "engine", "forward.py")
_CAPTUM_FORWARD = os.path.join("baselines", "captum_forward.py")


def _failed_pass_rows(error: BaseException) -> int | None:
    """The rows of the model call that raised ``error``: the inputs of the innermost
    :meth:`~lightning_causal.causal.engine.forward.Forward.raw`, or of the innermost
    :class:`~lightning_causal.baselines.captum_forward.CaptumForward` call (Captum's own batches), on its traceback
    (``None``: not called through either)."""
    rows, tb = None, error.__traceback__
    while tb is not None:
        # f_locals of those frames only: reading it caches a snapshot of the frame's variables on the frame, and the
        # caller's snapshot would hold the error (and through its traceback the failed pass's tensors) in a cycle
        code = tb.tb_frame.f_code
        name = ("inputs" if code.co_name == "raw" and code.co_filename.endswith(_FORWARD) else
                "args" if code.co_name == "forward" and code.co_filename.endswith(_CAPTUM_FORWARD) else None)
        inputs = tb.tb_frame.f_locals.get(name) if name is not None else None
        if isinstance(inputs, tuple) and inputs and isinstance(inputs[0], torch.Tensor) and inputs[0].dim():
            rows = int(inputs[0].shape[0])
        tb = tb.tb_next
    return rows


def failure_hint(error: BaseException, max_batch_size: int | None, samples: int) -> str:
    """What to change when an audit failed with ``error`` by running out of memory (``""`` for any other error): the
    rows per forward pass (``max_batch_size``, the value it had), below those of the pass that failed where they are
    known, or, where that pass held the ``samples`` probe samples themselves (a clean pass runs whole, whatever
    ``max_batch_size``), fewer probe samples.

    Examples:
        >>> failure_hint(ValueError("bad shape"), None, 16)
        ''
        >>> from lightning_causal._compat import OutOfMemoryError  # torch 2.3 - 2.4 have no torch.OutOfMemoryError
        >>> failure_hint(OutOfMemoryError("CUDA out of memory"), 64, 16)  # doctest: +ELLIPSIS
        '. The audit ran out of memory: lower the rows per forward pass of its interventions, `max_batch_size=` (now 64...'
    """
    if not is_out_of_memory(error):
        return ""
    now = ("None: chosen from the memory budget, 512 MiB of activations a pass on the CPU, an eighth of the free memory on "
           "a GPU" if max_batch_size is None else str(max_batch_size))
    rows = _failed_pass_rows(error)
    if rows is not None and rows <= samples:
        return (f". The audit ran out of memory in a pass over {rows} probe samples, which runs whole whatever `max_batch_size=`: "
                "audit fewer probe samples (`probe_size=`), or free memory on the device")
    which = f"; the pass that failed held {rows} rows, so try `max_batch_size={max(1, rows // 2)}`" if rows is not None else ""
    tunnel = ("; it failed in a NoiseTunnel: one of GradientShap runs its copies in one pass whatever `max_batch_size=`, "
              "bound them with `nt_samples_batch_size` in its options (`method_options={'NoiseTunnel(GradientShap)': "
              "{'nt_samples_batch_size': 1}}`)" if _in_noise_tunnel(error) else "")
    return (f". The audit ran out of memory: lower the rows per forward pass of its interventions, `max_batch_size=` (now "
            f"{now}){which}{tunnel}, or audit fewer probe samples (`probe_size=`)")


_NOISE_TUNNEL = os.path.join("captum", "attr", "_core", "noise_tunnel.py")
_GRADIENT_SHAP = os.path.join("captum", "attr", "_core", "gradient_shap.py")


def _in_noise_tunnel(error: BaseException) -> bool:
    """Whether a method's ``NoiseTunnel`` is on ``error``'s traceback (its frames' code, not their variables): Captum's
    ``NoiseTunnel`` before any frame of its ``GradientShap``, which runs a tunnel of its own (batched by
    ``max_batch_size=`` outside a tunnel of the method's)."""
    tb = error.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name.endswith((_NOISE_TUNNEL, _GRADIENT_SHAP)):  # the outermost of the two
            return name.endswith(_NOISE_TUNNEL)
        tb = tb.tb_next
    return False


def drift_base(result: AuditResult) -> dict[str, torch.Tensor]:
    """The 1-D vectors of ``result`` (detached, on the CPU) that the next drift compares with (:func:`finish_result`'s
    ``previous``), and of those whose entries it names (``meta["vector_entries"]``) the entries' codes under
    ``ENTRIES + <vector>`` (:func:`~lightning_causal.audits.drift.entry_codes`)."""
    base = {k: v.detach().cpu() for k, v in result.vectors.items() if v.dim() == 1}
    base.update({ENTRIES + k: entry_codes(names) for k, names in (result.meta.get("vector_entries") or {}).items() if k in base})
    return base
