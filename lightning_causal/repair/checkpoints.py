"""What a :class:`~lightning_causal.repair.module.CausalRepairModule` keeps in and reads from a
checkpoint: the ``"causal_repair"`` entry (:data:`CHECKPOINT_KEY`: the terms' state and their names,
:func:`save_entry`, :func:`restored_terms`, and, for a ``wrap()`` fit, the wrapped module's class and plain
hyper-parameters, :func:`wrapped_module_entry`, :func:`wrapped_entry`), the arguments ``load_from_checkpoint``
builds the module from (:func:`load_arguments`), the wrapped module built again from them (:func:`wrapped_model`)
and the repaired model's own weights read with ``weights_only=True`` (:func:`model_state_dict`)."""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import Tensor

from lightning_causal._cli import peek_checkpoint, saved_cli_config
from lightning_causal.repair.base import RepairTerm

__all__ = [
    "CHECKPOINT_KEY",
    "load_arguments",
    "model_state_dict",
    "plain_values",
    "restored_terms",
    "save_entry",
    "wrapped_entry",
    "wrapped_model",
    "wrapped_module_entry",
]

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


def save_entry(
    checkpoint: dict[str, Any],
    terms: Sequence[RepairTerm],
    set_up: bool,
    restored: Mapping[str, Any],
    wrapped: LightningModule | None = None,
) -> None:
    """Writes the ``"causal_repair"`` entry into ``checkpoint``: the terms' names and, once they are set up
    (``set_up``), each term's ``state_dict`` that is not ``None``; before that, the state ``restored`` from a
    checkpoint and not yet applied (a checkpoint the tuner's search, Lightning's ``LearningRateFinder`` /
    ``BatchSizeFinder`` at an epoch's start, restored mid-fit, where ``on_train_start`` comes no more). For a
    ``wrap()`` fit, ``wrapped`` is the wrapped module: its class and plain hyper-parameters are kept
    (:func:`wrapped_module_entry`), and the checkpoint's ``hyper_parameters``, the wrapped module's that
    Lightning saved as the wrap's, are dropped (they are not the wrap's constructor's)."""
    entry: dict[str, Any] = {"term_names": [t.name for t in terms]}
    if set_up:
        entry["terms"] = {t.name: state for t in terms if (state := t.state_dict()) is not None}
    elif restored:
        entry["terms"] = dict(restored)
    if wrapped is not None:  # what `load_from_checkpoint(path, model=MyModule)` rebuilds it from
        entry["wrapped"] = wrapped_module_entry(wrapped)
        for key in (LightningModule.CHECKPOINT_HYPER_PARAMS_KEY, LightningModule.CHECKPOINT_HYPER_PARAMS_NAME,
                    LightningModule.CHECKPOINT_HYPER_PARAMS_TYPE):
            checkpoint.pop(key, None)
    checkpoint[CHECKPOINT_KEY] = entry


def restored_terms(checkpoint: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The terms' state by name in ``checkpoint``'s ``"causal_repair"`` entry, and the names of the terms of
    the fit that saved it (those with a state, for a checkpoint without names)."""
    saved = checkpoint.get(CHECKPOINT_KEY) or {}
    restored = dict(saved.get("terms", {}))
    return restored, [str(n) for n in saved.get("term_names", restored)]


def load_arguments(checkpoint_path: Any, kwargs: dict[str, Any], may_wrap: bool) -> tuple[dict[str, Any], bool]:
    """The keyword arguments ``CausalRepairModule.load_from_checkpoint`` gives Lightning's, and whether the
    checkpoint loads as a ``wrap()`` (``may_wrap``: the class loading it is ``CausalRepairModule`` itself). A
    module ``LightningCLI`` built is built from its saved config (``model=``, ``terms=`` replace the config's);
    else ``model=`` is needed (a class is built from a ``wrap()`` fit's hyper-parameters, :func:`wrapped_model`),
    ``terms=`` defaults to none (inference), and a wrap gets the model as ``lightning_module=``.

    Raises:
        MisconfigurationException: ``model=`` not given (for a checkpoint without it in a CLI config), or a
            class that cannot be built (:func:`wrapped_model`).
    """
    checkpoint = peek_checkpoint(checkpoint_path, kwargs.get("weights_only"))
    config = saved_cli_config(checkpoint)
    if config is not None and all(name in kwargs or name in config for name in ("model", "terms")):
        return kwargs, False  # built from its config, as in the fit
    if "model" not in kwargs:
        raise MisconfigurationException(
            "Expected the argument `model` in CausalRepairModule.load_from_checkpoint: the model is an object, not a "
            "saved hyper-parameter; pass it, e.g. `CausalRepairModule.load_from_checkpoint(path, model=MyNet())` "
            "(`terms=[...]` too to train on), or load the model alone with "
            "`MyNet().load_state_dict(CausalRepairModule.model_state_dict(path))`"
        )
    kwargs = {**kwargs, "terms": kwargs.get("terms", [])}  # for inference: the terms act in training only
    wrapped = wrapped_entry(checkpoint) if may_wrap else None
    kwargs["model"] = wrapped_model(kwargs["model"], wrapped)  # a class: built from a wrap() fit's hyper-parameters
    if wrapped is None:
        return kwargs, False
    kwargs["lightning_module"] = kwargs.pop("model")  # loads as the wrap: the wrapped module's steps and optimizers
    return kwargs, True


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
