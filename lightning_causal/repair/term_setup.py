"""The repair terms made ready when a :class:`~lightning_causal.repair.module.CausalRepairModule` fit starts
training: each term set up on the model (``setup(model, train_inputs)``, with training inputs only where a
term ``needs_train_inputs``) or given back the state a checkpoint kept (:func:`set_up_terms`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn

from lightning_causal.repair.base import RepairTerm

__all__ = ["set_up_terms"]


def set_up_terms(
    terms: Sequence[RepairTerm],
    model: nn.Module,
    restored: Mapping[str, Any],
    saved_names: Sequence[str],
    read_inputs: Callable[[list[RepairTerm], bool], Tensor | None],
) -> None:
    """Each of ``terms`` given back its ``restored`` state (``load_state_dict(state, model)``, a resumed fit)
    or set up (``setup(model, inputs)``). ``read_inputs(fresh, check_only)`` gives the training inputs of the
    terms set up (``fresh``); it runs only where there are some, and ``check_only`` says that none of them
    reads the inputs (they are only checked). A term named in ``saved_names``, the terms of the fit that
    saved the checkpoint, that ``terms`` lack is warned about (it is not trained).

    Examples:
        >>> import torch
        >>> class Counted(RepairTerm):
        ...     def setup(self, model, train_inputs=None):
        ...         self.rows = train_inputs.shape[0]
        ...     def loss(self, model, x, y):
        ...         return model(x).sum()
        >>> term = Counted()
        >>> set_up_terms([term], nn.Linear(3, 2), {}, [], lambda fresh, check_only: torch.zeros(4, 3))
        >>> term.rows
        4
    """
    absent = [name for name in saved_names if name not in {t.name for t in terms}]
    if absent:  # e.g. a module loaded for inference (no `terms=`) and then fit
        rank_zero_warn(
            f"CausalRepairModule: the checkpoint was saved by a fit with the repair terms {absent}, which this module does "
            f"not have (its terms: {[t.name for t in terms]}); they are not trained. Pass them, "
            "`terms=[...]`, to go on repairing")
    fresh = [t for t in terms if t.name not in restored]
    check_only = not any(t.needs_train_inputs for t in fresh)
    inputs = read_inputs(fresh, check_only) if fresh else None
    for term in terms:
        if term.name in restored:
            term.load_state_dict(restored[term.name], model)
        else:
            term.setup(model, inputs)
