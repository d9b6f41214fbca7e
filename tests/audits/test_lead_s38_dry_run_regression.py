"""Final read of ab610f18: labels of two values were kept as classes (a margin classifier's -1/+1) by counting the
labels' values, which the callback's set-up dry run (2 rows) always found to be two or fewer: an ordinary regressor with
a fractional target, FairnessAudit at its default compare, was warned at set-up "compares class probabilities ... pass
compare='output'" (and its dry run compared probabilities) while every audit epoch compared its outputs. Margin labels
(every |y| = 1) are what is kept as classes now."""

from __future__ import annotations

import warnings

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import AttributeFlip, CausalAuditCallback, FairnessAudit


class _Regressor(L.LightningModule):
    """A linear regressor trained by a functional MSE (it holds no nn.MSELoss to say it regresses)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, _):
        return (self(batch[0]).squeeze(1) - batch[1]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), 0.01)


def test_a_regressor_under_the_callback_is_not_warned_at_set_up_and_compares_outputs(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 5, generator=g)
    x[:, 4] = (x[:, 4] > 0).float()
    y = 3 * x[:, 4] + x[:, 0] + 0.1 * torch.randn(64, generator=g)  # fractional, beyond [0, 1]
    callback = CausalAuditCallback([FairnessAudit(AttributeFlip(4))], probe=(x, y), every_n_epochs=1)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        L.Trainer(max_epochs=1, callbacks=[callback], logger=False, enable_checkpointing=False,
                  enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
                  default_root_dir=tmp_path).fit(_Regressor(), DataLoader(TensorDataset(x, y), batch_size=16))
    said = [str(w.message) for w in seen if "compares class probabilities" in str(w.message)]
    assert not said, said
    assert callback.last_results["fairness"].meta["compare"] == "output"
