"""newuser100: a knowledge edit or a task vector kept in a buffer (`F.linear(x, self.lin.weight + self.delta)`), written
by the LightningModule's own `on_train_epoch_end` (which Lightning calls after the callbacks', so after the epoch's
audit), changed the model the audit had explained with no word: the check of weights changed after an audit read the
parameters only, and warned of the same edit made to a parameter. It reads the floating-point buffers too (a pruning
mask aside, read in the pruned weight; integer counters left out), and the warning names what changed."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit
from lightning_causal.callbacks._fit_checks import _forward_weights

SAID = "changed after the audit of epoch 0 with no training step since"


class _DeltaLinear(nn.Module):  # a layer whose edit (or task vector) is kept in a buffer
    def __init__(self, i: int, o: int) -> None:
        super().__init__()
        self.lin = nn.Linear(i, o)
        self.register_buffer("delta", torch.zeros(o, i))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.lin.weight + self.delta, self.lin.bias)


class _Edited(pl.LightningModule):
    def __init__(self, edit: bool) -> None:
        super().__init__()
        self.edit = edit
        self.model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), _DeltaLinear(8, 8), nn.ReLU(),
                                   nn.Linear(8, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        return F.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        self.log("val_loss", F.cross_entropy(self(batch[0]), batch[1]))

    def on_train_epoch_end(self) -> None:  # after the callbacks': after the audit
        if self.edit and self.current_epoch == 0:
            with torch.no_grad():  # a rank-one edit of hidden unit 3, kept in the buffer
                self.model[3].delta += torch.outer(torch.eye(8)[3], torch.ones(8))

    def configure_optimizers(self):  # noqa: ANN201
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _said(edit: bool, tmp_path) -> list[str]:  # noqa: ANN001
    pl.seed_everything(0)
    x = torch.randn(64, 4)
    data = TensorDataset(x, (x[:, 0] > 0).long())
    trainer = pl.Trainer(max_epochs=2, default_root_dir=tmp_path, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=16)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(_Edited(edit), DataLoader(data, batch_size=32), DataLoader(data, batch_size=32))
    return [str(w.message) for w in caught if SAID in str(w.message)]


def test_an_edit_kept_in_a_buffer_after_the_audit_is_warned_about_by_name(tmp_path) -> None:  # noqa: ANN001
    said = _said(True, tmp_path)
    assert len(said) == 1, said
    assert f"{SAID} (at the start of epoch 1), in model.3.delta:" in said[0]


def test_no_edit_no_warning_beside_batch_norm_statistics(tmp_path) -> None:  # noqa: ANN001
    assert _said(False, tmp_path) == []


def test_the_buffers_read_a_pruning_mask_and_counters_aside() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), _DeltaLinear(4, 2))
    prune.l1_unstructured(model[0], "weight", amount=0.5)
    names = [name for name, _ in _forward_weights(model)]
    assert names == ["0.bias", "0.weight", "1.weight", "1.bias", "1.running_mean", "1.running_var", "2.delta",
                     "2.lin.weight", "2.lin.bias"]
