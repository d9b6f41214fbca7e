"""Lightning's ``BackboneFinetuning`` with ``CausalRepairModule(model)``, whose model keeps a ``backbone``: the callback
failed at set-up (``'CausalRepairModule' object has no attribute 'backbone'``; only ``CausalRepairModule.wrap``
forwarded the wrapped module's submodules), and with the attribute there, the module's Adam over every parameter
already held the backbone, so the callback skipped it at the unfreeze (a warning) and it trained at the repair's ``lr``
instead of its own param group's. The module now forwards the model's submodules (``repair.backbone``) and optimises
the parameters that require gradients; the frozen backbone joins as BackboneFinetuning's own param group. An audit
callback beside it changes nothing of it.

(A backbone built in ``configure_model`` cannot be used with ``BackboneFinetuning`` at all, with or without this
package: Lightning calls the callbacks' ``setup``, where ``BaseFinetuning`` freezes ``pl_module.backbone``, before
``configure_model``; see docs/recipes.md.)"""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import BackboneFinetuning, Callback
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, CausalRepairModule, CounterfactualFairnessTerm
from lightning_causal.audits import UnitImportanceAudit
from lightning_causal.causal import AttributeFlip


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 6), nn.ReLU())
        self.head = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


class _Watch(Callback):
    """Whether the backbone kept its initial weights at each epoch's end, and the optimizer's param groups."""

    def __init__(self, backbone: nn.Module) -> None:
        self.backbone, self.before = backbone, [p.detach().clone() for p in backbone.parameters()]
        self.frozen: list[bool] = []
        self.groups: list[tuple[int, float]] = []

    def on_train_epoch_end(self, trainer, pl_module) -> None:  # noqa: ANN001
        self.frozen.append(all(torch.equal(a, b) for a, b in zip(self.before, self.backbone.parameters())))
        self.groups = [(len(g["params"]), g["lr"]) for g in trainer.optimizers[0].param_groups]


def _data() -> tuple[DataLoader, DataLoader]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 4, generator=g)
    x[:, 0] = (x[:, 0] > 0).float()
    y = (x[:, 1] > 0).long()
    return DataLoader(TensorDataset(x[:40], y[:40]), batch_size=8), DataLoader(TensorDataset(x[40:], y[40:]), batch_size=8)


def test_backbone_finetuning_freezes_the_repaired_models_backbone_and_adds_it_as_its_own_param_group(tmp_path):
    torch.manual_seed(0)
    net = _Net()
    repair = CausalRepairModule(net, [CounterfactualFairnessTerm(AttributeFlip(0), weight=1.0)], lr=0.01)
    watch = _Watch(net.backbone)
    audit = CausalAuditCallback([UnitImportanceAudit(["model.backbone.0"], top_k=2)], probe_size=8)
    trainer = pl.Trainer(default_root_dir=tmp_path, max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         callbacks=[BackboneFinetuning(unfreeze_backbone_at_epoch=1), watch, audit])
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*already exist within another group")  # before: skipped, trained at lr
        trainer.fit(repair, *_data())
    assert watch.frozen == [True, False]  # frozen in epoch 0, trained from epoch 1
    # the head's 2 tensors at lr; the backbone's 2 at lr x backbone_initial_ratio_lr (0.1), BackboneFinetuning's group
    assert watch.groups == [(2, 0.01), (2, pytest.approx(0.001))]
    assert audit.audited_epochs == [0, 1]


def test_only_the_models_submodules_are_forwarded():
    net = _Net()
    net.scale = torch.ones(1)
    repair = CausalRepairModule(net, [])
    assert repair.backbone is net.backbone and repair.head is net.head
    with pytest.raises(AttributeError, match="scale"):
        repair.scale  # noqa: B018 - a tensor attribute is not forwarded
    assert sum(1 for m in repair.modules() if m is net.backbone) == 1  # counted once


def test_a_model_of_frozen_parameters_only_is_still_given_an_optimizer_beside_a_finetuning_callback():
    net = _Net().requires_grad_(False)
    repair = CausalRepairModule(net, [], lr=0.5)
    repair._trainer = SimpleNamespace(callbacks=[BackboneFinetuning()])  # what configure_optimizers reads of its trainer
    optimizer = repair.configure_optimizers()
    assert sum(len(g["params"]) for g in optimizer.param_groups) == 4


class _UnfreezeAt(Callback):
    """The user's own unfreezing, without a finetuning callback: the backbone trains from epoch ``epoch``."""

    def __init__(self, backbone: nn.Module, epoch: int) -> None:
        self.backbone, self.epoch = backbone, epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:  # noqa: ANN001
        if trainer.current_epoch == self.epoch:
            self.backbone.requires_grad_(True)


def _trainer(tmp_path, callbacks, **options) -> pl.Trainer:  # noqa: ANN001, ANN003
    return pl.Trainer(default_root_dir=tmp_path, accelerator="cpu", logger=False, enable_progress_bar=False,
                      enable_model_summary=False, num_sanity_val_steps=0, callbacks=callbacks, **options)


def test_without_a_finetuning_callback_a_backbone_the_user_unfreezes_trains(tmp_path):
    """Review of f4a5a3a: Adam over the parameters requiring gradients at set-up left a backbone frozen in ``__init__``
    out of the optimizer for good; unfrozen by the user's own code at epoch 1 it got gradients but never changed."""
    torch.manual_seed(0)
    net = _Net()
    net.backbone.requires_grad_(False)
    watch = _Watch(net.backbone)
    trainer = _trainer(tmp_path, [_UnfreezeAt(net.backbone, 1), watch], max_epochs=2, enable_checkpointing=False)
    trainer.fit(CausalRepairModule(net, [], lr=0.01), *_data())
    assert watch.frozen == [True, False] and watch.groups == [(4, 0.01)]


def test_a_checkpoint_whose_adam_holds_every_parameter_resumes_with_a_frozen_part(tmp_path, monkeypatch):
    """Review of f4a5a3a: a fit of a partly frozen model checkpointed its Adam over every parameter (before f4a5a3a, and
    as now without a finetuning callback); resuming it with Adam over the trainable ones failed on the optimizer state's
    layout ('loaded state dict contains a parameter group that doesn't match the size of optimizer's group')."""
    def every_parameter(self):  # noqa: ANN001, ANN202 - the module's optimizer before f4a5a3a
        return torch.optim.Adam(self.model.parameters(), lr=self.lr)

    def partly_frozen() -> CausalRepairModule:
        torch.manual_seed(0)
        net = _Net()
        net.backbone.requires_grad_(False)
        return CausalRepairModule(net, [], lr=0.01)

    with monkeypatch.context() as patch:
        patch.setattr(CausalRepairModule, "configure_optimizers", every_parameter)
        _trainer(tmp_path, [], max_epochs=1).fit(partly_frozen(), *_data())
    [ckpt] = (tmp_path / "checkpoints").glob("*.ckpt")
    trainer = _trainer(tmp_path / "resumed", [], max_epochs=2)
    trainer.fit(partly_frozen(), *_data(), ckpt_path=ckpt)
    assert trainer.current_epoch == 2 and sum(len(g["params"]) for g in trainer.optimizers[0].param_groups) == 4
