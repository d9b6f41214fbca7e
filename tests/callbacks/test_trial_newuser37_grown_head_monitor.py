"""newuser37: AuditEarlyStopping on the drift of a head that grows during the fit (class-incremental learning).

At the audit right after the head grew (3 -> 6 classes) the head's importance vector has 6 entries against 3 at the
audit before, so no drift of it is computed (entry i is not one unit). The monitor took the missing scalar for a
wrong tag and stopped the fit ("found no such scalar after the audit of epoch 1"); it now skips that audit with a
warning saying why, and checks again at the next audit, where the drift compares two audits of the grown head.
CausalGraphAudit's comparison with its previous graph (edge_jaccard_previous) is monitored alike: it stopped the fit at
the first audit already (nothing to compare yet), and at the run after the growth it is now skipped with a warning.
"""

import warnings

import pytest
import torch
from lightning import pytorch as pl
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import (
    AuditEarlyStopping,
    CausalAuditCallback,
    CausalGraphAudit,
    UnitImportanceAudit,
)
from tests.helpers.lightning import SgdMlp, quick_trainer

MONITOR = "causal/units/drift/importance/net.2/spearman"


class _GrowHead(pl.Callback):
    """At the start of epoch 1, the classifier ``net.2`` gets 6 outputs, the first 3 its old weights."""

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == 1:
            old, new = pl_module.net[2], nn.Linear(8, 6)
            with torch.no_grad():
                new.weight[:3], new.bias[:3] = old.weight, old.bias
            pl_module.net[2] = new
            trainer.strategy.setup_optimizers(trainer)  # the new head's parameters train


class _Checks(AuditEarlyStopping):
    """Records the epochs at which the monitor compared its scalar."""

    checked: list[int]

    def _run_early_stopping_check(self, trainer: pl.Trainer) -> None:
        self.checked = [*getattr(self, "checked", []), trainer.current_epoch]
        super()._run_early_stopping_check(trainer)


def _loaders() -> tuple[DataLoader, DataLoader]:
    torch.manual_seed(0)
    x = torch.randn(48, 4)
    y = torch.arange(48) % 3
    return DataLoader(TensorDataset(x, y), batch_size=16), DataLoader(TensorDataset(x[:12], y[:12]), batch_size=12)


def test_a_drift_monitor_skips_the_audit_where_the_head_grew_and_checks_again_after():
    train, val = _loaders()
    audits = CausalAuditCallback([UnitImportanceAudit(["net.0", "net.2"], name="units")], probe_size=12)
    monitor = _Checks(MONITOR, mode="max", patience=5)
    with pytest.warns(UserWarning, match=r"epoch 1 computed no such drift: the vector's length changed since the previous audit"):
        quick_trainer(max_epochs=3, callbacks=[audits, monitor, _GrowHead()], num_sanity_val_steps=0).fit(SgdMlp(4), train, val)
    assert audits.audited_epochs == [0, 1, 2]
    assert audits.last_results["units"].vectors["importance/net.2"].numel() == 6
    assert MONITOR in audits.last_scalars  # epoch 2 compares two audits of the grown head
    assert monitor.checked == [2]  # epoch 0: nothing to compare yet; epoch 1: skipped, not a stopped fit


def test_a_monitor_of_the_graph_comparison_waits_for_a_previous_graph_of_the_same_units():
    train, val = _loaders()
    audits = CausalAuditCallback([CausalGraphAudit(["net.1", "net.2"], top_k=3, stability_resamples=0, name="g")], probe_size=12)
    monitor = _Checks("causal/g/edge_jaccard_previous", mode="max", patience=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quick_trainer(max_epochs=3, callbacks=[audits, monitor, _GrowHead()], num_sanity_val_steps=0).fit(SgdMlp(4), train, val)
    said = [str(w.message) for w in caught if "edge_jaccard_previous" in str(w.message)]
    assert len(said) == 1 and "epoch 1 compared no graph with the previous audit's" in said[0]  # none at set-up or epoch 0
    assert audits.audited_epochs == [0, 1, 2]
    assert monitor.checked == [2]  # epoch 0: no previous graph; epoch 1: other units; epoch 2: two graphs of the grown head
