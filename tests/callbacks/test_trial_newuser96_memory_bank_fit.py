"""A kNN classifier whose memory bank of keys and soft labels (buffers its training-mode forward fills, a FIFO queue
as MoCo's) trained by ``CausalRepairModule`` in a ``Trainer`` fit holds the training rows once, as plain training's
does with the same seed: before 7f01b0c6 the fairness term's passes wrote their rows into the bank too (fused: the
flipped rows beside the batch's; ``fuse_forward=False``: the batch a second time), trial newuser96."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalRepairModule
from lightning_causal.causal import AttributeFlip
from lightning_causal.repair import CounterfactualFairnessTerm
from tests.repair.test_trial_newuser96_memory_bank import C, D, _MemoryKNN


class _Plain(pl.LightningModule):
    def __init__(self, model: _MemoryKNN) -> None:
        super().__init__()
        self.model = model

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        return F.cross_entropy(self.model(batch[0]), batch[1])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def _bank(tmp_path, repair: bool | None) -> _MemoryKNN:
    """The bank after a 2-epoch fit of 40 rows in batches of 8 (shuffled); ``repair``: None plain training, else the
    repair module with a fairness term, fused or not."""
    pl.seed_everything(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, D, generator=g)
    x[:, 0] = (x[:, 0] > 0).float()  # the flipped binary column
    y = torch.randint(0, C, (40,), generator=g)
    model = _MemoryKNN()
    lit = _Plain(model) if repair is None else CausalRepairModule(
        model, [CounterfactualFairnessTerm(AttributeFlip(0), 0, weight=1.0)], fuse_forward=repair)
    trainer = pl.Trainer(max_epochs=2, default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False)
    trainer.fit(lit, DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True))
    return model


@pytest.mark.parametrize("fuse", [True, False])
def test_a_repair_fit_fills_the_memory_bank_as_plain_training(tmp_path, fuse: bool) -> None:
    plain, repaired = _bank(tmp_path / "plain", None), _bank(tmp_path / "repair", fuse)
    assert int(plain.ptr) == 80 % 24 and not bool(plain.keys.isnan().any())  # every slot written, 80 rows in all
    assert torch.equal(repaired.ptr, plain.ptr)  # each training row written once, not the term's rows too
    assert torch.equal(repaired.keys, plain.keys)  # the same rows in the same slots (the shuffle's order)
