"""What a ``CausalRepairModule`` fine-tune's term passes leave in buffers that a model's training forward updates from
its rows (DUQ's class centroids, an SNGP's precision matrix, here a count of the rows seen): they run in training mode
and the buffers take their rows, as BatchNorm's running statistics do. On batches of 32 rows with a flip of every row:
the fit's first step (unfused, the term's pass put back) 32 rows, a fused step's joint pass 64 (each row and its
counterfactual), an unfused step 96 (the task's 32, the term's 64). docs/your_model.md (DUQ) says it."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import AttributeFlip, CausalRepairModule, CounterfactualFairnessTerm


class RowsSeen(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
        self.register_buffer("rows", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.rows += x.shape[0]  # a centroid's EMA count, a precision matrix's sum over rows
        return self.net(x)


@pytest.mark.parametrize(("fuse", "seen"), [(True, 32 + 64 + 64), (False, 3 * 96)], ids=["fused", "unfused"])
def test_the_terms_rows_reach_a_buffer_the_training_forward_updates(fuse, seen, tmp_path):
    pl.seed_everything(0, verbose=False)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 3, generator=g)
    x[:, 2] = (torch.rand(96, generator=g) < 0.5).float()
    y = (x[:, 0] > 0).long()
    model = RowsSeen()
    module = CausalRepairModule(model, [CounterfactualFairnessTerm(AttributeFlip(2), weight=1.0)], fuse_forward=fuse)
    trainer = pl.Trainer(max_steps=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=32))
    assert int(model.rows) == seen
