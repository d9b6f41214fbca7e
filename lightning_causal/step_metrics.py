"""The metrics the package's ``LightningModule`` s log at a step (:func:`step_metrics`): ``models.LightningClassifier``'s
training, validation and test steps and ``repair.CausalRepairModule``'s validation and test steps log the same names
by the same rule. Imports only torch: ``import lightning_causal.models`` stays free of Lightning."""

from __future__ import annotations

from torch import Tensor

__all__ = ["step_metrics"]


def step_metrics(stage: str, loss: Tensor, outputs: Tensor, labels: Tensor) -> dict[str, Tensor]:
    """``{"<stage>_loss": loss}`` and, for class logits ``[N, C]`` (``C >= 2``) against class-index labels ``[N]``
    (an integer tensor), ``"<stage>_acc"``, the share of rows whose largest logit is their label's:

    .. math:: \\mathrm{acc} = \\frac{1}{N} \\sum_i 1[\\arg\\max_c \\mathrm{out}_{ic} = y_i]

    A single output (a binary logit ``[N, 1]`` or ``[N]``, a probability, a regression) and soft or one-hot labels
    ``[N, C]`` (mixup, label smoothing, a teacher's probabilities) give the loss only: an argmax over one column, or
    against class probabilities, is no accuracy.

    Args:
        stage: the metrics' prefix (``"train"``, ``"val"``, ``"test"``).
        loss: the step's loss (a scalar tensor).
        outputs: the model's output on the batch (the logits).
        labels: the batch's labels.

    Examples:
        >>> import torch
        >>> logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
        >>> out = step_metrics("val", torch.tensor(0.5), logits, torch.tensor([0, 1, 1]))
        >>> sorted(out), round(float(out["val_acc"]), 4)
        (['val_acc', 'val_loss'], 0.6667)
        >>> sorted(step_metrics("val", torch.tensor(0.5), logits[:, :1], torch.tensor([0, 0, 0])))
        ['val_loss']
    """
    metrics = {f"{stage}_loss": loss}
    if outputs.dim() == 2 and outputs.shape[1] >= 2 and labels.dim() == 1 and not labels.is_floating_point():
        metrics[f"{stage}_acc"] = (outputs.argmax(1) == labels).float().mean()
    return metrics
