"""``LightningClassifier``, the minimal ``LightningModule`` of :mod:`lightning_causal.models`, which re-exports it
lazily: ``import lightning_causal.models`` (the plain models, the digits, ``fit_classifier``) loads no Lightning
until this name is used. The class's ``__module__`` is that public module: pickles name
``lightning_causal.models.LightningClassifier``, and load through the lazy export."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, cast, get_args

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import Tensor, nn
from torch.nn import functional as F

from lightning_causal._optimizers import adam_eps
from lightning_causal.models import Optimizer
from lightning_causal.step_metrics import step_metrics

__all__ = ["LightningClassifier"]


def _takes_one_of(model: nn.Module, count: int) -> bool:
    """Whether ``model``'s forward takes one positional input where ``count`` (> 1) were given: it
    binds one argument and not ``count`` (a forward of ``(self, xs)`` unpacking a pair itself). A
    forward whose signature cannot be read is called with the inputs as positional arguments."""
    try:
        sig = inspect.signature(model.forward)
    except (TypeError, ValueError):
        return False
    try:
        sig.bind(*range(count))
    except TypeError:
        pass
    else:
        return False
    try:
        sig.bind(0)
    except TypeError:
        return False
    return True


_LABELLED = "batches `(x, y)` of inputs and class labels (`((x_cont, x_cat), y)` for a network of several inputs)"


def _inputs_and_labels(batch: Any, stage: str) -> tuple[Any, Tensor | None]:
    """``(x, y)`` of a batch ``(x, y)``; ``(x, None)`` of a batch without labels (``[x]`` of a ``TensorDataset(x)``, a
    tensor ``x``), which only a validation or test step takes (CausalRepairModule's evaluation steps skip it too).

    Raises:
        MisconfigurationException: a training batch without labels, or a batch of another form, naming the forms taken.
    """
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    if isinstance(batch, Tensor) or (isinstance(batch, (tuple, list)) and len(batch) == 1):
        if stage != "train":
            return (batch if isinstance(batch, Tensor) else batch[0]), None
        raise MisconfigurationException(
            "LightningClassifier trains with the cross-entropy against labels, but a training batch holds no labels "
            f"({_described(batch)}): give the training dataloader {_LABELLED}")
    if not isinstance(batch, (tuple, list, Mapping)):  # another iterable of two, (x, y) as unpacking reads it
        try:
            x, y = batch
        except (TypeError, ValueError):
            pass
        else:
            return x, y
    raise MisconfigurationException(
        f"LightningClassifier takes {_LABELLED} and, to validate or test on, batches `[x]` or a tensor `x` without "
        f"labels (skipped), but a {stage} batch is {_described(batch)}")


def _described(batch: Any) -> str:
    """A batch's form in a message: ``a tensor [8, 3]``, ``a list of 1 ([8, 3])``, ``a mapping with keys ['x']``."""
    def one(value: Any) -> str:
        return str(list(value.shape)) if isinstance(value, Tensor) else type(value).__name__

    if isinstance(batch, Tensor):
        return f"a tensor {one(batch)}"
    if isinstance(batch, (tuple, list)):
        return f"a {type(batch).__name__} of {len(batch)} ({', '.join(one(b) for b in batch)})"
    if isinstance(batch, Mapping):
        return f"a mapping with keys {list(batch)}"
    return f"a {type(batch).__name__}"


class LightningClassifier(pl.LightningModule):
    """Minimal ``LightningModule`` around a classifier: cross-entropy, accuracy, Adam or SGD (Adam's ``eps`` 1e-4 over
    float16 weights, ``Trainer(precision="16-true")``, where torch's 1e-8 is 0: :func:`~lightning_causal._optimizers.adam_eps`).

    Each step logs ``<stage>_loss`` (``train``, ``val``, ``test``) and, for class logits ``[N, C]`` (``C >= 2``) with
    class-index labels ``[N]``, ``<stage>_acc``, by ``CausalRepairModule``'s rule
    (:func:`~lightning_causal.step_metrics.step_metrics`); of several validation or test dataloaders, Lightning names each one's
    (``val_loss/dataloader_idx_1``). Soft labels ``[N, C]`` (mixup, CutMix, label smoothing, a teacher's probabilities)
    train with the cross-entropy against those class probabilities and log the loss only. It holds its
    ``nn.CrossEntropyLoss`` as a submodule, which tells the audits it is a single-label classifier
    (:func:`~lightning_causal.audits.label_task.label_task`): one-hot and soft labels are read as
    classes without the warning of a guess. A network of one output (a binary logit ``[N, 1]``, whose cross-entropy
    is 0 whatever it predicts) is refused at its first step (``MisconfigurationException``): give it two outputs.
    Validation and test batches without labels (``[x]`` of a ``TensorDataset(x)``, or a tensor ``x``: a validation
    set that only feeds an audit's probe) are skipped, as ``CausalRepairModule``'s evaluation steps skip them:
    nothing is logged for them. A training batch without labels, or a batch of another form (``(x, y, w)``, a dict),
    is refused (``MisconfigurationException``, naming the forms taken).

    Args:
        model: the network; one of several inputs (``model(x_cont, x_cat)``) trains on batches
            ``((x_cont, x_cat), y)``, and the audits call it with the inputs as they come.
        lr: learning rate.
        optimizer: ``"adam"`` or ``"sgd"`` (momentum 0.9).

    Checkpoints hold ``lr`` and ``optimizer`` as hyper-parameters; the network is an object, not a
    hyper-parameter (its weights are in the state dict): load with
    ``LightningClassifier.load_from_checkpoint(path, model=MyNet())``. A classifier built by
    ``LightningCLI`` from a config (``model: {class_path: ..., init_args: ...}``) also saves the
    network's config, a plain value there, so its checkpoints load with
    ``LightningClassifier.load_from_checkpoint(path)`` alone (the network rebuilt from the config).
    """

    def __init__(self, model: nn.Module, lr: float = 1e-3, optimizer: Optimizer = "adam") -> None:
        super().__init__()
        if optimizer not in get_args(Optimizer):
            raise ValueError(f"Expected argument `optimizer` to be 'adam' or 'sgd' but got {optimizer!r}")
        from lightning_causal._cli import built_by_cli

        # built by LightningCLI, the network is a config (plain data): kept, for load_from_checkpoint(path)
        self.save_hyperparameters(ignore=None if built_by_cli() else ["model"])
        self.model = model
        # says the task: the audits read it from the losses a model holds (label_task: one class per sample), so that
        # one-hot and soft labels [N, C] are read as classes without a guess's warning. The steps call F.cross_entropy,
        # the same loss, which a whole-module pickle saved before this attribute still has
        self.cross_entropy = nn.CrossEntropyLoss()
        self.lr = lr
        self.optimizer_name = optimizer

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """Lightning's ``load_from_checkpoint`` (``lr`` and ``optimizer`` are the checkpoint's); the
        network is not a saved hyper-parameter, so pass it: ``load_from_checkpoint(path, model=MyNet())``,
        unless the classifier was built by ``LightningCLI``, whose checkpoints hold the network's config
        (``model=`` then replaces it).

        Args:
            checkpoint_path: the checkpoint's path (or a file-like object), as Lightning takes it.
            *args: passed on to Lightning's ``load_from_checkpoint``.
            **kwargs: passed on to Lightning's ``load_from_checkpoint`` (``model=``, ``map_location=``,
                ``weights_only=``, hyper-parameters to override).

        Raises:
            MisconfigurationException: ``model=`` not given for a checkpoint without the network's config.
        """
        from lightning_causal._cli import peek_checkpoint, saved_cli_config

        config = saved_cli_config(peek_checkpoint(checkpoint_path, kwargs.get("weights_only"))) if "model" not in kwargs else None
        if "model" not in kwargs and (config is None or "model" not in config):
            raise MisconfigurationException(
                f"Expected the argument `model` in {cls.__name__}.load_from_checkpoint: the network is an object, not a saved "
                f"hyper-parameter (its weights are in the checkpoint); pass it, e.g. "
                f"`{cls.__name__}.load_from_checkpoint(path, model=MyNet())`")
        return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)

    def forward(self, *inputs: Any) -> Tensor:
        """The network on the inputs: ``self(x)``; for a network of several inputs (``model(x_cont,
        x_cat)``) ``self(x_cont, x_cat)`` as the audits call it, or ``self((x_cont, x_cat))`` as the
        steps do with batches ``((x_cont, x_cat), y)``. A network whose forward takes the inputs as
        one tuple or list (``forward(self, xs)``) gets them so in both calls.

        Args:
            *inputs: the network's inputs, as above.
        """
        if len(inputs) == 1 and isinstance(inputs[0], (tuple, list)):
            several = inputs[0]
            return self.model(several) if _takes_one_of(self.model, len(several)) else self.model(*several)
        if len(inputs) > 1 and _takes_one_of(self.model, len(inputs)):
            return self.model(inputs)
        return self.model(*inputs)

    def _step(self, batch: Any, stage: str) -> Tensor | None:
        x, y = _inputs_and_labels(batch, stage)
        if y is None:  # an evaluation batch without labels (checked in _inputs_and_labels): nothing to score
            return None
        logits = self(x)
        if logits.dim() < 2 or logits.shape[1] < 2:
            raise MisconfigurationException(
                f"LightningClassifier trains with the cross-entropy over C >= 2 class logits [N, C], but its network gave "
                f"{'logits of shape ' + str(list(logits.shape)) if logits.dim() else 'a scalar'} at a {stage} step: over one "
                "logit a row's softmax is 1 and the loss 0 whatever it predicts (labels 1 fail in torch). Give the network "
                "two outputs (out_features=2) with labels 0/1, or train a one-logit head with "
                "CausalRepairModule(model, terms, task_loss=nn.BCEWithLogitsLoss()) or a LightningModule of your own")
        loss = F.cross_entropy(logits, y)
        # the loss, and the accuracy of class logits against class indices (not soft labels): CausalRepairModule's rule
        self.log_dict(step_metrics(stage, loss, logits, y), prog_bar=stage == "val")
        return loss

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        # never None: _inputs_and_labels refuses a training batch without labels
        return cast(Tensor, self._step(batch, "train"))

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        # dataloader_idx: Lightning refuses several validation dataloaders for a step without it
        self._step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._step(batch, "test")

    def predict_step(self, batch: Tensor | tuple[Tensor, ...], batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        """The network's logits on the batch's inputs (a tensor, or ``(x, y)`` whose labels are ignored):
        ``trainer.predict``, and ``LightningCLI``'s ``predict --ckpt_path path``.

        Args:
            batch: a tensor of inputs, or ``(x, y)``.
            batch_idx: the batch's index (unused).
            dataloader_idx: which of several predict dataloaders the batch comes from (unused).
        """
        return self(batch[0] if isinstance(batch, (tuple, list)) else batch)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self.optimizer_name == "sgd":
            return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)
        return torch.optim.Adam(self.parameters(), lr=self.lr, eps=adam_eps(self.parameters()))  # float16: 1e-4


# Pickles (torch.save of a whole module, a DataLoader worker's copy, a multiprocessing spawn) and LightningCLI's saved
# config name a class by its __module__: the public path, so that they survive a move of this private module. The
# price: inspect.getsource(LightningClassifier) looks in models.py and finds no class there (OSError); its methods'
# sources are found (their __code__ names this file).
LightningClassifier.__module__ = "lightning_causal.models"
