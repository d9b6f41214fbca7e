"""The audit callback's hooks called by Lightning Fabric: ``Fabric(callbacks=[CausalAuditCallback(...)])``
and ``fabric.call("on_train_epoch_end", fabric, model)`` hand the hooks a ``Fabric`` where they read a
``Trainer`` (its epoch, loops, loggers and callbacks), which failed deep inside on
``'Fabric' object has no attribute 'sanity_checking'``. :func:`check_trainer` refuses it first and
names what a Fabric loop does instead."""

from __future__ import annotations

from lightning.fabric import Fabric
from lightning.pytorch.utilities.exceptions import MisconfigurationException

__all__ = ["check_trainer"]


def check_trainer(trainer: object, hook: str) -> None:
    """Raise ``MisconfigurationException`` when ``hook`` of ``CausalAuditCallback`` is called with a
    ``Fabric`` object instead of a ``Trainer``.

    Examples:
        >>> check_trainer(object(), "on_train_epoch_end")  # a Trainer (or a test's stand-in) passes
    """
    if isinstance(trainer, Fabric):
        raise MisconfigurationException(
            f"CausalAuditCallback is a Lightning Trainer callback, but its `{hook}` was called with a Fabric object "
            f"(`Fabric(callbacks=[...])` and `fabric.call({hook!r}, ...)`): it reads the Trainer's epoch, loops and "
            "loggers, which Fabric does not have. In a Fabric loop run the audits yourself after each epoch, "
            "`results = [audit.run(model.module, probe) for audit in audits]` with `probe = Probe(x, y)`, and log "
            "them with `fabric.log_dict(scalar_tags(result))` and `TensorBoardRenderer().render(...)` "
            "(lightning_causal.reporting; docs/recipes.md, 'Without Trainer: Fabric and plain loops')")
