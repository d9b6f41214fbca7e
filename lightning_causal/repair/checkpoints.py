"""What a :class:`~lightning_causal.repair.module.CausalRepairModule` keeps in and reads from a
checkpoint: the ``"causal_repair"`` entry (:data:`CHECKPOINT_KEY`: the terms' state, their names and,
for a ``wrap()`` fit, the wrapped module's class and plain hyper-parameters, :func:`wrapped_module_entry`,
:func:`wrapped_entry`), the wrapped module built again from them (:func:`wrapped_model`) and the
repaired model's own weights read with ``weights_only=True`` (:func:`model_state_dict`)."""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Mapping
from typing import Any

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import Tensor

__all__ = ["CHECKPOINT_KEY", "model_state_dict", "plain_values", "wrapped_entry", "wrapped_model", "wrapped_module_entry"]

#: The checkpoint entry holding the terms' state (``RepairTerm.state_dict``).
CHECKPOINT_KEY = "causal_repair"


def model_state_dict(checkpoint: str | os.PathLike | Mapping[str, Any], map_location: Any = "cpu") -> dict[str, Tensor]:
    """The ``model.`` entries of a checkpoint's ``state_dict`` without the prefix (a path is read with
    ``torch.load(weights_only=True)``); :meth:`CausalRepairModule.model_state_dict
    <lightning_causal.repair.module.CausalRepairModule.model_state_dict>` documents it."""
    if isinstance(checkpoint, (str, os.PathLike)):
        try:  # tensors and plain values only: a shared checkpoint runs no pickled code
            checkpoint = torch.load(checkpoint, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as err:
            why = next((line.strip() for line in str(err).splitlines() if "Unsupported global" in line), "unsupported objects")
            raise MisconfigurationException(
                f"Expected argument `checkpoint` {os.fspath(checkpoint)!r} to hold tensors and plain values only (it is "
                f"read with `torch.load(weights_only=True)`) but it holds other objects ({why.split('. Please use')[0]}). "
                "If you trust the file, load it yourself (`torch.load(path, weights_only=False)`) and pass the mapping"
            ) from err
    state = checkpoint.get("state_dict") if isinstance(checkpoint, Mapping) else None
    if not isinstance(state, Mapping):
        raise MisconfigurationException(
            f"Expected argument `checkpoint` to be a checkpoint path or a mapping with 'state_dict' but got {type(checkpoint).__name__}")
    inner = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
    if not inner:
        raise MisconfigurationException(
            f"Expected a checkpoint of a CausalRepairModule fit (weights under 'model.') but got the keys {list(state)[:5]}")
    return inner


def plain_values(hparams: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``hparams`` split into the values ``torch.load(weights_only=True)`` reads back (numbers, strings,
    tensors, containers of them) and the names of the others (modules, callables: objects), which a
    checkpoint does not keep, so that it stays readable without running pickled code."""
    plain, other = {}, []
    for key, value in hparams.items():
        buffer = io.BytesIO()
        try:
            torch.save(value, buffer)
            buffer.seek(0)
            torch.load(buffer, weights_only=True)
        except Exception:  # noqa: BLE001 - anything that does not round-trip as plain data
            other.append(key)
        else:
            plain[key] = value
    return plain, other


def wrapped_module_entry(module: LightningModule) -> dict[str, Any]:
    """The ``wrapped`` entry a ``wrap()`` fit checkpoints for its wrapped ``module``: its class, its plain
    hyper-parameters and the names of those it does not keep (objects), what
    ``load_from_checkpoint(path, model=MyModule)`` rebuilds it from."""
    plain, other = plain_values(dict(module.hparams))
    return {"class": f"{type(module).__module__}.{type(module).__qualname__}", "hyper_parameters": plain, "unsaved": other}


def wrapped_entry(checkpoint: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``wrapped`` entry (the wrapped module's class and hyper-parameters) of a checkpoint of a
    ``wrap()`` fit, or ``None``."""
    saved = checkpoint.get(CHECKPOINT_KEY)
    return saved.get("wrapped") if isinstance(saved, Mapping) else None


def wrapped_model(model: Any, wrapped: dict[str, Any] | None) -> Any:
    """The ``model=`` of ``load_from_checkpoint``: an instance as it is; a ``LightningModule`` class built
    from the hyper-parameters of the checkpoint's ``wrapped`` entry (a checkpoint of a ``wrap()`` fit).

    Raises:
        MisconfigurationException: a class for a checkpoint that is not of a ``wrap()`` fit, a class
            that is not a ``LightningModule``, or one that cannot be built from the saved values.
    """
    if isinstance(model, type) and wrapped is not None and wrapped.get("unsaved"):
        raise MisconfigurationException(
            f"Could not build `model` {model.__name__} from the hyper-parameters its wrap() checkpoint saved: "
            f"{wrapped['unsaved']} are objects, not plain values, and were not saved (the checkpoint stays readable "
            f"with `weights_only=True`); pass an instance, `model={model.__name__}(...)`")
    if not isinstance(model, type):
        return model
    if wrapped is None or not issubclass(model, LightningModule):
        raise MisconfigurationException(
            f"Expected argument `model` of CausalRepairModule.load_from_checkpoint to be a module instance but got the "
            f"class {model.__name__}: a class (built from its saved hyper-parameters) is for a checkpoint of a wrap() fit "
            "and a LightningModule class, and this checkpoint is not a wrap() fit"
            + ("" if wrapped is None else f" ({model.__name__} is not a LightningModule)"))
    try:
        return model(**wrapped["hyper_parameters"])
    except TypeError as err:  # e.g. an argument it does not save (an nn.Module, `ignore=`d)
        raise MisconfigurationException(
            f"Could not build `model` {model.__name__} from the hyper-parameters its wrap() checkpoint saved "
            f"({sorted(wrapped['hyper_parameters'])}): {err}; pass an instance, `model={model.__name__}(...)`") from err
