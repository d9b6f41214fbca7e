"""``CausalRepairModule.wrap()`` runs the wrapped module's batch-transfer hooks on the training
batches (docs/recipes.md). The repair's set-up read its samples of the train loader raw: a module
whose ``on_before_batch_transfer`` turns a mapping ``{"feat", "label"}`` into ``(x, y)`` trained fine
unwrapped but stopped at the repair's set-up with 'cannot read the batch: Expected a batch mapping
with one of the input keys ...'. The set-up now reads the batches as training does."""

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from lightning_causal import BackdoorSuppressionTerm, CausalRepairModule, CounterfactualFairnessTerm
from lightning_causal.causal import AttributeFlip
from lightning_causal.repair.train_inputs import train_inputs


class _Rows(Dataset):
    def __init__(self) -> None:
        g = torch.Generator().manual_seed(3)
        self.x = torch.randn(24, 5, generator=g)
        self.x[:, 0] = (self.x[:, 0] > 0).float()
        self.y = (self.x[:, 1] > 0).long()

    def __len__(self) -> int:
        return 24

    def __getitem__(self, i: int) -> dict:
        return {"feat": self.x[i], "label": self.y[i]}


class _Converts(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self(batch[0]), batch[1])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return DataLoader(_Rows(), batch_size=8)

    def on_before_batch_transfer(self, batch, dataloader_idx):
        return (batch["feat"], batch["label"]) if isinstance(batch, dict) else batch


def _trainer() -> pl.Trainer:
    return pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False)


@pytest.mark.parametrize("term", [lambda: CounterfactualFairnessTerm(AttributeFlip(0), weight=1.0),
                                  lambda: BackdoorSuppressionTerm(trigger=None, suspects=["net.0"], weight=1.0)])
def test_a_wrap_fit_sets_up_its_terms_from_the_converted_batches(term):
    torch.manual_seed(0)
    _trainer().fit(CausalRepairModule.wrap(_Converts(), [term()]))  # raised MisconfigurationException before


def test_the_setup_inputs_are_the_training_inputs():
    torch.manual_seed(0)
    repair = CausalRepairModule.wrap(_Converts(), [CounterfactualFairnessTerm(AttributeFlip(0), weight=0.0)])
    trainer = _trainer()
    seen = {}

    class _Grab(pl.Callback):
        def on_train_start(self, trainer, pl_module):
            seen["x"] = train_inputs(trainer, lambda b: pl_module.unpack(b)[0], pl_module.device, pl_module.terms, False)

    trainer.callbacks.append(_Grab())
    trainer.fit(repair)
    torch.testing.assert_close(seen["x"], _Rows().x)  # all 24 rows, in the loader's order
