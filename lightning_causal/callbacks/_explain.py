"""``explain=`` of :class:`~lightning_causal.callbacks.audit.CausalAuditCallback`: which input of a model of
several inputs (``forward(self, image, tab)``, batches ``((image, tab), y)``) the audits that draw or
perturb one input tensor explain. Checked at construction (:func:`check_explain`) and against the probe at
set-up (:func:`explained_position`); each audit then gets the model and probe it explains
(:func:`audited_view`): the chosen input alone, the others passed along as per-sample forward arguments
(:func:`~lightning_causal.causal.engine.chosen_input.chosen_input`), or, for an audit that takes every input
(:attr:`~lightning_causal.audits.base.Audit.takes_every_input`), the probe as it is."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_causal.audits.base import Audit, Probe
from lightning_causal.causal.engine.chosen_input import (
    check_input_choice,
    chosen_input,
    input_position,
)
from lightning_causal.reporting.map_data import probe_marks

__all__ = ["audited_view", "check_explain", "explained_input", "explained_marks", "explained_position"]


def check_explain(explain: Any) -> int | str | None:
    """``explain`` as given: ``None``, an int >= 0 (the input's position) or a non-empty str (``forward``'s parameter)
    (:func:`~lightning_causal.causal.engine.chosen_input.check_input_choice`).

    Raises:
        MisconfigurationException: anything else, naming the value.
    """
    return check_input_choice(explain, "the probe's inputs tuple", MisconfigurationException)


def explained_position(explain: int | str | None, model: torch.nn.Module, probe: Probe) -> int | None:
    """The position in ``probe.inputs`` of the input ``explain`` names (``None``: no choice, today's calls;
    :func:`~lightning_causal.causal.engine.chosen_input.input_position`).

    Raises:
        MisconfigurationException: a probe of one input, a position out of range, a name that is no
            parameter of ``model.forward`` taking one of the probe's inputs.
    """
    if explain is None:
        return None
    inputs = probe.inputs if isinstance(probe.inputs, tuple) else (probe.inputs,)
    if len(inputs) < 2:
        raise MisconfigurationException(
            f"Expected a probe of several inputs for argument `explain` ({explain!r}), which chooses one of them, but the "
            f"probe holds one input tensor of shape {list(inputs[0].shape)}: leave `explain=None`, or give `unpack_batch=` "
            "that reads the inputs as a tuple, ((x1, x2), y)")
    return input_position(explain, model, len(inputs), "the probe", MisconfigurationException)


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


def explained_marks(model: torch.nn.Module, probe: Probe, position: int | None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """What the maps of the explained input draw apart (:func:`~lightning_causal.reporting.map_data.probe_marks`): its
    entries the model is told to ignore (an observation mask's 0, padded steps or points) and its steps' time stamps,
    read from the probe's forward arguments as the audits read them (the other inputs, under ``explain=``, in their
    places), ``(None, None)`` where they hold none.

    Args:
        model: the model audited.
        probe: the probe.
        position: the explained input (:func:`explained_position`).
    """
    if position is None or not isinstance(probe.inputs, tuple):
        return probe_marks(model, probe.first, probe.additional_forward_args)
    wrapper, x, args = chosen_input(model, probe.inputs, position, probe.additional_forward_args)
    return probe_marks(wrapper, x, args)
