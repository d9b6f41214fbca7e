"""Review of ba2124a4 (the warning of weights changed after an epoch's audit with no training step since): pruning.

``torch.nn.utils.prune`` (and Lightning's ``ModelPruning``) keeps a pruned weight as a parameter ``X_orig`` beside a
buffer ``X_mask``, the forward using ``X = X_orig * X_mask``. The check read the parameters alone: ``ModelPruning``
listed before the audit callback (so that each audit explains the pruned network), with its default
``make_pruning_permanent=True``, was warned about when training ended, as if the weights had changed after the audit
(the parameter ``X_orig`` became ``X``, the weight the audit had explained); and a new mask of an already pruned weight,
set after the audit, changed no parameter and was not warned about. The check reads the weights the forward uses now,
and the warning names the way for a callback: list it before the audit callback."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback, ModelPruning
from torch import nn
from torch.nn.utils import prune
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit


class _Net(pl.LightningModule):
    def __init__(self, pruned: bool = False) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2))
        if pruned:  # pruned by hand before the fit: the parameter is net.0.weight_orig from the start
            prune.l1_unstructured(self.net[0], "weight", amount=0.25)

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self(batch[0]), batch[1])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class _PruneMore(Callback):
    """Prunes ``net.0.weight`` further at each epoch's end: only its mask changes."""

    def on_train_epoch_end(self, trainer, pl_module):
        prune.l1_unstructured(pl_module.net[0], "weight", amount=0.25)


def _said(module, before=(), after=(), max_epochs: int = 2, tmp_path=None) -> list[str]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 3, generator=g)
    data = DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=16)
    callback = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pl.Trainer(max_epochs=max_epochs, logger=False, callbacks=[*before, callback, *after], default_root_dir=tmp_path,
                   enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False).fit(module, data)
    return [str(w.message) for w in caught if "changed after the audit" in str(w.message)]


def test_model_pruning_listed_before_the_audit_and_made_permanent_at_the_end_is_not_warned_about(tmp_path):
    """Each audit explains the pruned network; ``prune.remove`` at the end writes that very weight into ``X``."""
    assert _said(_Net(), before=[ModelPruning("l1_unstructured", amount=0.2)], tmp_path=tmp_path) == []


def test_a_new_mask_after_the_audit_is_warned_about_and_the_warning_names_the_callbacks_order(tmp_path):
    """A mask changed after the audit changes no parameter, yet the network differs from the one explained."""
    said = _said(_Net(pruned=True), after=[_PruneMore()], tmp_path=tmp_path)
    assert len(said) == 1, said
    assert "changed after the audit of epoch 0 with no training step since (at the start of epoch 1)" in said[0]
    assert "list such a callback before CausalAuditCallback in `Trainer(callbacks=[...])`" in said[0]
    assert _said(_Net(pruned=True), before=[_PruneMore()], tmp_path=tmp_path) == []  # the way it names


class _SwapForEpochEnd(Callback):
    """Other weights (an EMA's, here halved ones) swapped in for the epoch's end (its checkpoint) and the trained ones
    back when the next epoch starts."""

    def on_train_epoch_end(self, trainer, pl_module):
        self.trained = {k: v.clone() for k, v in pl_module.state_dict().items()}
        pl_module.load_state_dict({k: v / 2 for k, v in self.trained.items()})

    def on_train_epoch_start(self, trainer, pl_module):
        if hasattr(self, "trained"):
            pl_module.load_state_dict(self.trained)


def test_weights_swapped_in_for_the_epoch_end_by_a_callback_before_the_audit_and_back_are_not_warned_about(tmp_path):
    """Listed before, the swap comes before the audit, which explains the weights the epoch ends with; the trained ones
    back at the next epoch's start are those of the epoch's last step: no change after the audit. Listed after, the
    audit explained the trained weights and the epoch ended with others: warned."""
    assert _said(_Net(), before=[_SwapForEpochEnd()], tmp_path=tmp_path) == []
    assert len(_said(_Net(), after=[_SwapForEpochEnd()], tmp_path=tmp_path)) == 1
