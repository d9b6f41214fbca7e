"""What the callback checks of the :class:`~lightning_causal.audits.base.AuditResult` an audit returns (an audit of
your own above all), at the dry run before training and at every audit epoch: a wrong value would otherwise fail
after the first epoch in the callback's own code (``'dict' object has no attribute 'meta'``) or, worse, not at all."""

from __future__ import annotations

import io
from typing import Any

import torch
from torch import Tensor

from lightning_causal.audits.base import Audit, AuditResult

__all__ = ["check_state", "checked_result"]

#: the fields of an AuditResult that hold tensors
_TENSOR_FIELDS = ("vectors", "maps", "images")
_DICT_FIELDS = ("scalars", *_TENSOR_FIELDS, "graphs", "tables", "curves", "meta")


def checked_result(audit: Audit, result: Any) -> AuditResult:
    """``result``, the return value of ``audit.run``, if it is an :class:`AuditResult` named after the audit whose
    fields hold what the reporting layer reads.

    The name matters: tags (``causal/<name>/...``), drift, the checkpoint state and the JSON report follow it, so two
    audits returning results of one name (a name written in ``run`` instead of ``self.name``) would log into one
    series and leave one entry in the report, silently.

    Args:
        audit: the audit that ran.
        result: what its ``run`` returned.

    Raises:
        TypeError: not an AuditResult, a field that is not a dict, a scalar that is no real number, a vector, map
            or image that is no tensor, an image of other than 3 or 4 dimensions, a graph or curve that is no dict, a
            table that is no list of dict rows.
        ValueError: a result named otherwise than the audit.

    Examples:
        >>> from lightning_causal.audits import InputEffectAudit
        >>> checked_result(InputEffectAudit(), AuditResult("input_effect", scalars={"a": 1.0})).scalars
        {'a': 1.0}
        >>> checked_result(InputEffectAudit(), AuditResult("mine"))
        Traceback (most recent call last):
        ...
        ValueError: Expected InputEffectAudit.run of audit 'input_effect' to return an AuditResult named 'input_effect' (AuditResult(self.name, ...)) but got one named 'mine': tags, drift and the report follow the audit's name
    """
    where = f"{type(audit).__name__}.run of audit {audit.name!r}"
    if not isinstance(result, AuditResult):
        raise TypeError(f"Expected {where} to return an AuditResult (lightning_causal.audits.AuditResult) but got "
                        f"{type(result).__name__}")
    if result.audit != audit.name:
        raise ValueError(f"Expected {where} to return an AuditResult named {audit.name!r} (AuditResult(self.name, ...)) but "
                         f"got one named {result.audit!r}: tags, drift and the report follow the audit's name")
    for name in _DICT_FIELDS:
        if not isinstance(getattr(result, name), dict):
            raise TypeError(f"Expected `AuditResult.{name}` of {where} to be a dict but got {type(getattr(result, name)).__name__}")
    for key, value in result.scalars.items():
        if not _real_number(value):
            raise TypeError(f"Expected `AuditResult.scalars[{key!r}]` of {where} to be a real number (a float, or a tensor "
                            f"of one element) but got {_describe(value)}")
    for name in _TENSOR_FIELDS:
        for key, value in getattr(result, name).items():
            if not isinstance(value, Tensor):
                raise TypeError(f"Expected `AuditResult.{name}[{key!r}]` of {where} to be a tensor but got {_describe(value)}"
                                f"; torch.as_tensor(...) makes one")
    for key, image in result.images.items():
        if image.dim() not in (3, 4):
            raise TypeError(f"Expected `AuditResult.images[{key!r}]` of {where} to be images [N, C, H, W] or one image [C, H, W] "
                            f"but got {_describe(image)}; a grey image [H, W] is image[None]")
    for name, kind in (("graphs", dict), ("tables", list), ("curves", dict)):
        for key, value in getattr(result, name).items():
            if not isinstance(value, kind) or name == "tables" and not all(isinstance(row, dict) for row in value):
                what = {"graphs": "a JSON-able dict", "tables": "a list of rows, each a dict column -> value",
                        "curves": 'a dict {"x": [...], <series>: [...]}'}[name]
                raise TypeError(f"Expected `AuditResult.{name}[{key!r}]` of {where} to be {what} but got {_describe(value)}")
    return result


def check_state(audit: Audit, state: Any) -> None:
    """Refuse an ``audit.state_dict()`` that a checkpoint could not give back: the callback stores it in checkpoints, which
    a resumed fit loads with ``torch.load(weights_only=True)`` (a NumPy array in it was saved, and the resume failed
    with torch's "Weights only load failed").

    Args:
        audit: the audit.
        state: what its ``state_dict()`` returned (after the dry run).

    Raises:
        TypeError: not a dict, or values other than plain values (numbers, strings, lists, dicts) and tensors.
    """
    where = f"{type(audit).__name__}.state_dict() of audit {audit.name!r}"
    if not isinstance(state, dict):
        raise TypeError(f"Expected {where} to return a dict but got {type(state).__name__}")
    buffer = io.BytesIO()
    try:
        torch.save(state, buffer)
        buffer.seek(0)
        torch.load(buffer, weights_only=True)
    except Exception as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        why = next((line for line in lines if "Unsupported global" in line), lines[-1] if lines else repr(err))
        raise TypeError(f"Expected {where} to hold plain values (numbers, strings, lists, dicts) and tensors, which "
                        f"checkpoints give back with torch.load(weights_only=True), but loading it failed: {why}; "
                        "convert NumPy arrays with torch.as_tensor") from err


def _real_number(value: Any) -> bool:
    """A float, int, NumPy scalar or one-element real tensor (what ``float()`` reads as a number; not a string)."""
    if isinstance(value, Tensor):
        return value.numel() == 1 and not value.is_complex()
    if isinstance(value, (str, bytes, complex)):
        return False
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _describe(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"a tensor of shape {list(value.shape)}"
    return f"{type(value).__name__} {value!r:.60}"
