"""Review of the change cbf0660b (newuser100): the check of weights changed after an epoch's audit read every
floating-point buffer, so a state the forward keeps, moved with no edit after the audit, was warned about as changed
weights, with advice on federated averaging and projections: BatchNorm's running statistics moved by a forward pass in
train mode in the module's `on_train_epoch_end` or in a logging callback listed after the audit's (`torch.no_grad()`
does not stop it), a hidden state carried across batches reset at the epoch's end. The buffers the epoch's training
steps wrote (`buffers_written`) are such states and are not warned about; an edit kept in a buffer still is, by name."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit
from lightning_causal.callbacks._fit_checks import weight_sums
from tests.callbacks.test_newuser100_buffer_edit_after_audit import (
    _DeltaLinear,  # an edit kept in a buffer
)

SAID = "changed after the audit of epoch 0 with no training step since"
X = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))


class _Net(pl.LightningModule):
    def __init__(self, forward_at_end: bool = False, edit: bool = False, carried: bool = False) -> None:
        super().__init__()
        self.forward_at_end, self.edit, self.carried = forward_at_end, edit, carried
        self.model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), _DeltaLinear(8, 8), nn.ReLU(),
                                   nn.Linear(8, 2))
        self.register_buffer("h", torch.zeros(1, 4))  # a state carried across batches

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.carried:
            x = x + self.h
            if self.training:
                self.h = x.mean(0, keepdim=True).detach()
        return self.model(x)

    def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        return F.cross_entropy(self(batch[0]), batch[1])

    def on_train_epoch_end(self) -> None:  # after the callbacks': after the audit
        if self.forward_at_end:  # a train accuracy on a few samples, the model left in train mode
            with torch.no_grad():
                self.log("train_acc_fixed", (self(X[:16]).argmax(1) == (X[:16, 0] > 0)).float().mean())
        if self.carried:
            self.h.zero_()  # the carried state reset for the next epoch
        if self.edit and self.current_epoch == 0:
            with torch.no_grad():
                self.model[3].delta += torch.outer(torch.eye(8)[3], torch.ones(8))

    def configure_optimizers(self):  # noqa: ANN201
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _SampleLogger(pl.Callback):  # a callback listed after the audit's that runs the model in train mode
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        with torch.no_grad():
            pl_module(X[:8])


def _said(module: _Net, tmp_path, logger: bool = False, before: tuple = ()) -> list[str]:  # noqa: ANN001
    """The warnings of weights changed after epoch 0's audit in a 2-epoch fit (``before``: callbacks listed first)."""
    pl.seed_everything(0)
    callbacks = [*before, CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=16),
                 *([_SampleLogger()] * logger)]
    trainer = pl.Trainer(max_epochs=2, default_root_dir=tmp_path, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=callbacks)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(module, DataLoader(TensorDataset(X, (X[:, 0] > 0).long()), batch_size=32))
    return [str(w.message) for w in caught if SAID in str(w.message)]


def test_batch_norm_statistics_moved_by_a_forward_in_train_mode_after_the_audit_are_no_change(tmp_path) -> None:  # noqa: ANN001
    assert _said(_Net(forward_at_end=True), tmp_path) == []


def test_a_logging_callback_after_the_audit_running_the_model_in_train_mode_is_no_change(tmp_path) -> None:  # noqa: ANN001
    assert _said(_Net(), tmp_path, logger=True) == []


def test_a_carried_state_reset_at_the_epoch_end_is_no_change(tmp_path) -> None:  # noqa: ANN001
    assert _said(_Net(carried=True), tmp_path) == []


def test_an_edit_in_a_buffer_beside_moved_statistics_is_warned_about_by_its_name_only(tmp_path) -> None:  # noqa: ANN001
    said = _said(_Net(forward_at_end=True, edit=True), tmp_path)
    assert len(said) == 1, said
    assert f"{SAID} (at the start of epoch 1), in model.3.delta:" in said[0]


def test_buffers_written_names_the_buffers_a_training_step_moved() -> None:
    # imported here: the fit tests above run on older code too
    from lightning_causal.callbacks._fit_checks import buffers_written

    model = _Net(carried=True)
    start = weight_sums(model)
    model(X[:8]).sum().backward()  # a forward in train mode: BatchNorm's statistics and the carried state move
    with torch.no_grad():
        model.model[0].weight.add_(1.0)  # a parameter moved too: no buffer
    assert buffers_written(start, weight_sums(model), model) == {"h", "model.1.running_mean", "model.1.running_var"}
    assert buffers_written(None, weight_sums(model), model) == frozenset()
