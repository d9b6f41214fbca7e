"""LightningDataModules for demos and configs: scikit-learn's bundled digits (no download) and the
synthetic fairness data (made in memory)."""

from __future__ import annotations

import lightning.pytorch as pl
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.causal.engine.checks import check_float, check_int, check_seed
from lightning_causal.datasets.synthetic_fairness import make_synthetic_fairness
from lightning_causal.models import load_digits_tensors

__all__ = ["DigitsDataModule", "FairnessDataModule"]


class _SplitDataModule(pl.LightningDataModule):
    """The loaders of a module whose ``setup`` makes ``train_set`` and ``val_set``: training batches of
    ``batch_size``, shuffled; validation and prediction batches of 256, in order."""

    batch_size: int
    train_set: TensorDataset
    val_set: TensorDataset

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=256)

    def predict_dataloader(self) -> DataLoader:
        """The validation split (``trainer.predict``, ``LightningCLI``'s ``predict``), in its order."""
        return self.val_dataloader()


class DigitsDataModule(_SplitDataModule):
    """8x8 digits as ``[N, 1, 8, 8]`` tensors in [0, 1]; a fixed train/validation split.

    Args:
        batch_size: training batch size (validation uses 256).
        val_fraction: share of the 1,797 images held out for validation.
        seed: seed of the split (a private generator).
    """

    def __init__(self, batch_size: int = 64, val_fraction: float = 0.2, seed: int = 0) -> None:
        super().__init__()
        check_int("batch_size", batch_size, minimum=1)
        check_float("val_fraction", val_fraction, minimum=0, maximum=1, open_min=True, open_max=True)
        self.batch_size, self.val_fraction, self.seed = batch_size, val_fraction, check_seed(seed)

    def setup(self, stage: str) -> None:
        xt, yt, xv, yv = load_digits_tensors(self.val_fraction, self.seed)  # every stage: fit, validate, predict
        self.train_set, self.val_set = TensorDataset(xt, yt), TensorDataset(xv, yv)


class FairnessDataModule(_SplitDataModule):
    """The synthetic fairness data of :func:`~lightning_causal.datasets.make_synthetic_fairness` (columns
    ``a`` (sensitive), ``m1``, ``m2``, ``x3`` as ``[N, 4]`` floats; a binary label), split into training
    and validation rows, for configs such as ``examples/config_fairness_repair.yaml``.

    Args:
        n: number of samples drawn (the first ``(1 - val_fraction) n`` train, the rest validate).
        batch_size: training batch size (validation uses 256).
        val_fraction: share of the samples held out for validation.
        seed: seed of the data (a private generator).

    Examples:
        >>> data = FairnessDataModule(n=100)
        >>> data.setup("fit")
        >>> len(data.train_set), len(data.val_set), data.columns
        (80, 20, ['a', 'm1', 'm2', 'x3'])
    """

    def __init__(self, n: int = 2000, batch_size: int = 64, val_fraction: float = 0.2, seed: int = 0) -> None:
        super().__init__()
        check_int("n", n, minimum=2)
        check_int("batch_size", batch_size, minimum=1)
        check_float("val_fraction", val_fraction, minimum=0, maximum=1, open_min=True, open_max=True)
        self.n, self.batch_size, self.val_fraction, self.seed = n, batch_size, val_fraction, check_seed(seed)
        self.columns = ["a", "m1", "m2", "x3"]

    def setup(self, stage: str) -> None:
        data = make_synthetic_fairness(n=self.n, seed=self.seed)
        self.columns = list(data.columns)
        k = self.n - max(1, int(self.n * self.val_fraction))
        self.train_set, self.val_set = TensorDataset(data.x[:k], data.y[:k]), TensorDataset(data.x[k:], data.y[k:])
