"""Modules that ``LightningCLI`` builds from a config: their arguments, networks and repair terms
included, are plain data there (class paths and init args), which a checkpoint can keep, so that
``load_from_checkpoint(path)`` rebuilds them as Lightning rebuilds any CLI-built module.

Lightning passes a module built by ``LightningCLI`` its config through ``save_hyperparameters``
(the config replaces the arguments read from the constructor's frame) and marks it with the
hyper-parameter ``_instantiator``, with which ``load_from_checkpoint`` builds the module again.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping
from typing import Any

__all__ = ["INSTANTIATOR", "built_by_cli", "peek_checkpoint", "saved_cli_config"]

#: The hyper-parameter Lightning adds to a module that ``LightningCLI`` builds.
INSTANTIATOR = "_instantiator"


def built_by_cli() -> bool:
    """Whether the module being constructed now is built by ``LightningCLI`` (call in ``__init__``).

    Examples:
        >>> built_by_cli()
        False
    """
    from lightning.pytorch.core.mixins import HyperparametersMixin

    probe = HyperparametersMixin()
    try:  # the CLI's config when one is given; else the arguments of the constructor being run, without it
        probe.save_hyperparameters(INSTANTIATOR, frame=inspect.currentframe(), logger=False)
    except KeyError:
        return False
    return INSTANTIATOR in probe.hparams


def peek_checkpoint(checkpoint_path: Any, weights_only: bool | None) -> Mapping[str, Any]:
    """The checkpoint at ``checkpoint_path`` (loaded on the CPU as Lightning will load it); a file
    object is read back to where it was."""
    from lightning.fabric.utilities.cloud_io import _load as pl_load

    start = checkpoint_path.tell() if hasattr(checkpoint_path, "seek") else None
    with warnings.catch_warnings():  # Lightning's note on `weights_only`: it comes once, when Lightning loads the file
        warnings.simplefilter("ignore")
        checkpoint = pl_load(checkpoint_path, map_location="cpu", weights_only=weights_only)
    if start is not None:
        checkpoint_path.seek(start)
    return checkpoint if isinstance(checkpoint, Mapping) else {}


def saved_cli_config(checkpoint: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The config a module built by ``LightningCLI`` saved in ``checkpoint`` (its hyper-parameters),
    ``None`` for a module built otherwise.

    Examples:
        >>> saved_cli_config({"hyper_parameters": {"lr": 0.1, "_instantiator": "..."}})["lr"]
        0.1
        >>> saved_cli_config({"hyper_parameters": {"lr": 0.1}}) is None
        True
    """
    hparams = checkpoint.get("hyper_parameters")
    return hparams if isinstance(hparams, Mapping) and INSTANTIATOR in hparams else None
