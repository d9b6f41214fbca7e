"""The repair-term protocol used by :class:`~lightning_causal.repair.CausalRepairModule`."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable

from torch import Tensor, nn

__all__ = ["RepairTerm"]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class RepairTerm(ABC):
    """A differentiable penalty added to the task loss during fine-tuning.

    ``training_step`` computes ``task_loss + sum_i weight_i(epoch) * term_i.loss(model, x, y)``.

    Args:
        weight: a constant, or a callable of the current epoch (e.g. a warm-up schedule).
        name: tag used in logs (``repair/<name>``); defaults to the class name in snake case.
    """

    def __init__(self, weight: float | Callable[[int], float] = 1.0, name: str | None = None) -> None:
        if not callable(weight):
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
                raise ValueError(
                    f"Expected argument `weight` to be a non-negative number or a callable of the epoch but got {weight!r}"
                )
        self.weight = weight
        self.name = name or _snake(type(self).__name__).replace("_term", "")

    def weight_at(self, epoch: int) -> float:
        """The term's weight at ``epoch``."""
        w = self.weight(epoch) if callable(self.weight) else self.weight
        w = float(w)
        if w < 0:
            raise ValueError(f"Expected the weight of term `{self.name}` at epoch {epoch} to be >= 0 but got {w}")
        return w

    def setup(self, model: nn.Module, train_inputs: Tensor | None = None) -> None:  # noqa: B027
        """Prepare before fine-tuning starts (e.g. reverse-engineer a trigger from ``train_inputs``)."""

    @abstractmethod
    def loss(self, model: nn.Module, x: Tensor, y: Tensor | None) -> Tensor:
        """Scalar, differentiable penalty on the batch ``(x, y)`` for ``model``."""
