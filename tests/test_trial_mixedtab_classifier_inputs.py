"""LightningClassifier around a network of two inputs, model(x_cont, x_cat), trained on batches
((x_cont, x_cat), y) with a unit audit: its forward passed the tuple as one argument
(TypeError: forward() missing 1 required positional argument)."""

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from lightning_causal import CausalAuditCallback, UnitImportanceAudit
from lightning_causal.causal import unit_effects
from lightning_causal.models import LightningClassifier


class Mixed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.region = nn.Embedding(3, 2)
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))

    def forward(self, x_cont: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x_cont, self.region(x_cat[:, 0])], 1))


class Rows(Dataset):
    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.x_cont, self.x_cat = torch.randn(64, 2, generator=g), torch.randint(0, 3, (64, 1), generator=g)
        self.y = (self.x_cont[:, 0] > 0).long()

    def __len__(self) -> int:
        return 64

    def __getitem__(self, i: int):
        return (self.x_cont[i], self.x_cat[i]), self.y[i]


def test_two_input_network_trains_and_is_audited(tmp_path) -> None:
    pl.seed_everything(0)
    module = LightningClassifier(Mixed(), lr=1e-2)
    audit = CausalAuditCallback([UnitImportanceAudit(["model.net.1"])], probe_size=32)
    trainer = pl.Trainer(max_epochs=1, callbacks=[audit], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    rows = Rows()
    trainer.fit(module, DataLoader(rows, batch_size=16), DataLoader(rows, batch_size=32))
    assert audit.audited_epochs == [0]
    module.eval()
    with torch.no_grad():
        direct = module.model(rows.x_cont, rows.x_cat)
        torch.testing.assert_close(module(rows.x_cont, rows.x_cat), direct)
        torch.testing.assert_close(module((rows.x_cont, rows.x_cat)), direct)
    effects = unit_effects(module, (rows.x_cont[:32], rows.x_cat[:32]), "model.net.1")
    assert effects.shape == (32, 8)
