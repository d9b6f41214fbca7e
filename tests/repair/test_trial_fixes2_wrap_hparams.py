"""`CausalRepairModule.wrap(module)`: `wrapped.hparams` was empty (the wrapped module's
`save_hyperparameters()` values were invisible on the wrap). They are now the wrapped module's own
mapping; a checkpoint keeps them where the wrap is rebuilt from (not as the wrap's constructor
arguments), and the round trip `load_from_checkpoint(path, model=MyModule, terms=...)` gives them back
with the same outputs. A wrapped module's own `model` attribute is `wrapped.model.model`."""

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.causal import AttributeFlip
from lightning_causal.repair import CausalRepairModule, CounterfactualFairnessTerm


class Clf(pl.LightningModule):
    def __init__(self, hidden: int = 8, lr: float = 0.05) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 2))  # its own `model`

    def forward(self, x):
        return self.model(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def _terms():
    return [CounterfactualFairnessTerm(AttributeFlip(3), weight=0.5)]


def _data():
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
    x[:, 3] = (x[:, 3] > 0).float()
    return x, (x[:, 0] > 0).long()


def test_wrapped_hparams_are_the_wrapped_modules():
    inner = Clf(hidden=6, lr=0.05)
    wrapped = CausalRepairModule.wrap(inner, _terms())
    assert dict(wrapped.hparams) == {"hidden": 6, "lr": 0.05}
    wrapped.hparams.lr = 0.1  # the very mapping its configure_optimizers reads
    assert inner.hparams.lr == 0.1
    assert wrapped.configure_optimizers().param_groups[0]["lr"] == 0.1
    assert wrapped.model is inner and isinstance(wrapped.model.model, nn.Sequential)


def test_checkpoint_round_trip_keeps_the_hparams(tmp_path):
    torch.manual_seed(0)
    x, y = _data()
    wrapped = CausalRepairModule.wrap(Clf(hidden=6, lr=0.05), _terms())
    ckpt = ModelCheckpoint(dirpath=tmp_path)
    trainer = pl.Trainer(max_epochs=1, logger=False, callbacks=[ckpt], enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(wrapped, DataLoader(TensorDataset(x, y), batch_size=8))
    saved = torch.load(ckpt.best_model_path, weights_only=True)
    assert "hyper_parameters" not in saved  # not the wrap's constructor arguments
    assert saved["causal_repair"]["wrapped"]["hyper_parameters"] == {"hidden": 6, "lr": 0.05}
    loaded = CausalRepairModule.load_from_checkpoint(ckpt.best_model_path, model=Clf, terms=_terms())
    assert dict(loaded.hparams) == {"hidden": 6, "lr": 0.05}
    assert loaded.model.model[0].out_features == 6
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), wrapped(x))
