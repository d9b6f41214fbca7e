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
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import (
    Audit,
    AuditEarlyStopping,
    AuditResult,
    CausalAuditCallback,
    CausalGraphAudit,
    UnitImportanceAudit,
)
from tests.helpers.lightning import SgdMlp, quick_trainer
from tests.helpers.models import grown_linear

MONITOR = "causal/units/drift/importance/net.2/spearman"


class _GrowHead(pl.Callback):
    """At the start of epoch 1, the classifier ``net.2`` gets 6 outputs, the first 3 its old weights."""

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == 1:
            pl_module.net[2] = grown_linear(pl_module.net[2], 6)
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


def test_a_graph_comparison_name_under_an_audit_that_draws_no_graph_is_refused_at_the_first_audit():
    # review of 4c411fa: every tag ending in edge_jaccard_previous was taken for the graph's comparison, so a monitor of
    # it under a UnitImportanceAudit was skipped silently at the first audit, without the set-up warning, and refused
    # only at the second (an audit every 10 epochs: 10 epochs later)
    train, val = _loaders()
    audits = CausalAuditCallback([UnitImportanceAudit(["net.0"], name="units")], probe_size=12)
    monitor = _Checks("causal/units/edge_jaccard_previous", mode="max")
    with pytest.warns(UserWarning, match=r"edge_jaccard_previous'\) is not among the scalars of the audits' dry run"), \
            pytest.raises(MisconfigurationException, match=r"edge_jaccard_previous'\) found no such scalar after the audit of epoch 0"):
        quick_trainer(max_epochs=1, callbacks=[audits, monitor], num_sanity_val_steps=0).fit(SgdMlp(4), train, val)


class _FailsFirst(CausalGraphAudit):
    """A CausalGraphAudit whose first audit of the whole probe fails (the dry run's 2 samples pass)."""

    failed = False

    def run(self, model, probe, **kwargs):
        if len(probe.inputs) > 2 and not self.failed:
            self.failed = True
            raise RuntimeError("the first audit fails")
        return super().run(model, probe, **kwargs)


def test_a_graph_comparison_after_a_failed_first_run_is_skipped_with_a_warning():
    # as a drift monitor after a failed first audit (test_trial_monitor): the run after it has no previous graph
    train, val = _loaders()
    audits = CausalAuditCallback([_FailsFirst(["net.1"], top_k=3, stability_resamples=0, name="g")], probe_size=12,
                                 on_error="warn")
    monitor = _Checks("causal/g/edges_lost", mode="min", patience=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quick_trainer(max_epochs=3, callbacks=[audits, monitor], num_sanity_val_steps=0).fit(SgdMlp(4), train, val)
    said = [str(w.message) for w in caught if "logged no comparison with a previous graph" in str(w.message)]
    assert len(said) == 1 and "the audit of epoch 1" in said[0]
    assert monitor.checked == [2]  # epoch 0: failed; epoch 1: nothing to compare with; epoch 2: compared


class _NamedEntries(Audit):
    """An own audit of one vector whose two entries are named: layers "a", "b" at its first run, "a", "c" after."""

    def __init__(self) -> None:
        super().__init__("named")
        self.runs = 0

    def run(self, model, probe, *, max_batch_size=None):
        if len(probe.inputs) > 2:  # not the dry run
            self.runs += 1
        entries = ["a", "b"] if self.runs < 2 else ["a", "c"]
        return AuditResult(self.name, scalars={"n": 1.0}, vectors={"v": torch.tensor([1.0, 2.0 + self.runs])},
                           meta={"vector_entries": {"v": entries}})


def test_a_drift_monitor_skips_the_audit_where_the_vectors_entries_changed_saying_so():
    # review of 961f38f: the warning said "the vector's length changed" for a vector of other entries in the same number
    train, val = _loaders()
    audits = CausalAuditCallback([_NamedEntries()], probe_size=12)
    monitor = _Checks("causal/named/drift/v/shift", mode="min", patience=5)
    with pytest.warns(UserWarning, match=r"epoch 1 computed no such drift: the vector's entries are other ones than at the previous "
                                         r"audit, in the same number"):
        quick_trainer(max_epochs=3, callbacks=[audits, monitor], num_sanity_val_steps=0).fit(SgdMlp(4), train, val)
    assert audits.last_results["named"].meta.get("changed_entries") is None  # epoch 2: "a", "c" again, compared
    assert monitor.checked == [2]
