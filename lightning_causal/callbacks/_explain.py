"""``explain=`` of :class:`~lightning_causal.callbacks.audit.CausalAuditCallback`: which input of a model of
several inputs (``forward(self, image, tab)``, batches ``((image, tab), y)``) the audits that draw or
perturb one input tensor explain. Checked at construction (:func:`check_explain`) and against the probe at
set-up (:func:`explained_position`); each audit then gets the model and probe it explains
(:func:`audited_view`): the chosen input alone, the others passed along as per-sample forward arguments
(:func:`~lightning_causal.causal.engine.chosen_input.chosen_input`), or, for an audit that takes every input
(:attr:`~lightning_causal.audits.base.Audit.takes_every_input`), the probe as it is."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_causal.audits.base import Audit, Probe
from lightning_causal.causal.engine.chosen_input import chosen_input, model_name

__all__ = ["audited_view", "check_explain", "explained_input", "explained_position"]


def check_explain(explain: Any) -> int | str | None:
    """``explain`` as given: ``None``, an int >= 0 (the input's position) or a non-empty str (``forward``'s parameter).

    Raises:
        MisconfigurationException: anything else, naming the value.
    """
    if explain is None or isinstance(explain, str) and explain:
        return explain
    if isinstance(explain, bool) or not isinstance(explain, int) or explain < 0:
        raise MisconfigurationException(
            "Expected argument `explain` to be None, an int >= 0 (the position of the explained input in the probe's "
            f"inputs tuple) or the name of forward's parameter (str) but got {explain!r}")
    return explain


def _positional_names(model: torch.nn.Module) -> list[str] | None:
    """The names of ``model.forward``'s positional parameters in order (``None`` where it takes ``*args`` first)."""
    try:
        parameters = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return None
    names = []
    for p in parameters:
        if p.kind == inspect.Parameter.VAR_POSITIONAL:
            return names or None
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
    return names


def explained_position(explain: int | str | None, model: torch.nn.Module, probe: Probe) -> int | None:
    """The position in ``probe.inputs`` of the input ``explain`` names (``None``: no choice, today's calls).

    Raises:
        MisconfigurationException: a probe of one input, a position out of range, a name that is no
            parameter of ``model.forward`` taking one of the probe's inputs.
    """
    if explain is None:
        return None
    inputs = probe.inputs if isinstance(probe.inputs, tuple) else (probe.inputs,)
    names = _positional_names(model)
    shown = f" ({', '.join(repr(n) for n in names[: len(inputs)])})" if names and len(names) >= len(inputs) else ""
    if len(inputs) < 2:
        raise MisconfigurationException(
            f"Expected a probe of several inputs for argument `explain` ({explain!r}), which chooses one of them, but the "
            f"probe holds one input tensor of shape {list(inputs[0].shape)}: leave `explain=None`, or give `unpack_batch=` "
            "that reads the inputs as a tuple, ((x1, x2), y)")
    allowed = f"an input position from 0 to {len(inputs) - 1} or the name of one of forward's first {len(inputs)} parameters{shown}"
    if isinstance(explain, int):
        if explain >= len(inputs):
            raise MisconfigurationException(
                f"Expected argument `explain` to be {allowed} (the probe holds {len(inputs)} inputs) but got {explain}")
        return explain
    if names is None or explain not in names:
        raise MisconfigurationException(
            f"Expected argument `explain` to be {allowed} but got {explain!r}, which is no parameter of "
            f"{model_name(model)}.forward" + (f" (its parameters: {names})" if names else ""))
    position = names.index(explain)
    if position >= len(inputs):
        raise MisconfigurationException(
            f"Expected argument `explain` to be {allowed} but got {explain!r}, forward's parameter {position}: the probe "
            f"holds {len(inputs)} inputs, so {explain!r} is passed as a forward argument, not an input")
    return position


def audited_view(audit: Audit, model: torch.nn.Module, probe: Probe, position: int | None) -> tuple[torch.nn.Module, Probe]:
    """The model and probe ``audit`` explains: ``(model, probe)`` as they are where ``position`` is ``None``
    or the audit takes every input; else input ``position`` alone, the model called with every other input in
    its own place (:func:`~lightning_causal.causal.engine.chosen_input.chosen_input`).

    Args:
        audit: the audit.
        model: the model audited.
        probe: the probe of several inputs.
        position: the explained input (:func:`explained_position`).
    """
    if position is None or audit.takes_every_input or not isinstance(probe.inputs, tuple):
        return model, probe
    wrapper, x, args = chosen_input(model, probe.inputs, position, probe.additional_forward_args)
    return wrapper, Probe(x, probe.labels, args)


def explained_input(probe: Probe, position: int | None) -> torch.Tensor:
    """The input of ``probe`` the maps explain, drawn beside them: input ``position``, else the first.

    Args:
        probe: the probe.
        position: the explained input (:func:`explained_position`).
    """
    if position is None or not isinstance(probe.inputs, tuple):
        return probe.first
    return probe.inputs[position]
