"""The warnings of ``callbacks/`` and ``repair/`` name the user's line (a fit's ``trainer.fit``/``validate`` line, a
constructor's or a step's call), not the package's: they went through Lightning's ``rank_zero_warn`` at its default
``stacklevel``, which names its caller's line in the package (``callbacks/monitoring.py``, ``callbacks/audit.py``,
``callbacks/_resume.py``, ``repair/module_arguments.py``, ``repair/objective.py``, ``repair/term_setup.py``), so a
filter by the user's module (``warnings.filterwarnings(module=...)``) missed them. They warn through
``lightning_causal._user_warnings.warn_at_users_line`` now (process 0 only, as before)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from lightning import pytorch as pl
from lightning.pytorch.callbacks import (
    EarlyStopping,
    ModelPruning,
    OnExceptionCheckpoint,
    StochasticWeightAveraging,
)
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

from lightning_causal import (
    AuditEarlyStopping,
    AuditModelCheckpoint,
    CaptumBaseline,
    CausalAuditCallback,
    CausalGraphAudit,
    CausalRepairModule,
    CounterfactualFairnessTerm,
)
from lightning_causal.audits.base import Audit, AuditResult
from lightning_causal.callbacks._resume import unclaimed_audit_state, warn_other_probe
from lightning_causal.causal import AttributeFlip
from lightning_causal.repair.term_setup import set_up_terms
from tests.helpers.lightning import SgdMlp, classifier, loaders, quick_trainer, trainer
from tests.helpers.models import grown_linear

VECTORS = [[4.0, 3.0, 2.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0, 1.0], [0.0, 1.0, 2.0, 3.0, 4.0]]


class _Ranked(Audit):
    """The next vector of ``script`` at each audit; the first audit on the probe fails where ``fail_first``."""

    def __init__(self, script: list[list[float]], fail_first: bool = False) -> None:
        super().__init__("ranked")
        self.script, self.calls, self.fail_first = script, 0, fail_first

    def run(self, model, probe, *, max_batch_size=None) -> AuditResult:  # noqa: ANN001
        vector = torch.tensor(self.script[min(self.calls, len(self.script) - 1)])
        self.calls += 1
        if self.fail_first and self.calls == 2:  # the dry run (call 1) passes, the first audit fails
            raise RuntimeError("scripted failure")
        return AuditResult(self.name, scalars={"top": float(vector.max())}, vectors={"imp": vector})

    def _renamed(self, name: str) -> _Ranked:
        self.name = name
        return self


def _fit(tmp_path: Path, *monitors, every: int = 2, max_epochs: int = 4, fail_first: bool = False,
         script: list[list[float]] = VECTORS) -> None:
    cb = CausalAuditCallback([_Ranked(script, fail_first)], every_n_epochs=every, probe_size=8,
                             report_dir=tmp_path / "r", on_error="warn" if fail_first else "raise")
    checkpoints = any(isinstance(m, AuditModelCheckpoint) for m in monitors)
    trainer(tmp_path, max_epochs=max_epochs, callbacks=[cb, *monitors],
            enable_checkpointing=checkpoints).fit(classifier(), *loaders())


def _constant_drift(tmp_path: Path) -> None:  # monitoring._due: a Spearman drift of a constant vector
    _fit(tmp_path, AuditEarlyStopping("causal/ranked/drift/imp/spearman", mode="max", patience=3), max_epochs=4)


def _no_drift(tmp_path: Path) -> None:  # monitoring._due: the first audit failed, the second has nothing to compare
    _fit(tmp_path, AuditEarlyStopping("causal/ranked/drift/imp/spearman", patience=3), max_epochs=4, fail_first=True)


def _resized(tmp_path: Path) -> None:  # monitoring._due: the vector's length changed between two audits
    _fit(tmp_path, AuditEarlyStopping("causal/ranked/drift/imp/spearman", patience=3), max_epochs=4,
         script=[VECTORS[0], VECTORS[0], [1.0, 2.0, 3.0]])  # the dry run, epoch 1, epoch 3


def _graph_of_other_units(tmp_path: Path) -> None:  # monitoring._due: the graph's units changed (a grown head)
    x, y = torch.randn(48, 4), torch.arange(48) % 3
    train, val = DataLoader(TensorDataset(x, y), batch_size=16), DataLoader(TensorDataset(x[:12], y[:12]), batch_size=12)
    audits = CausalAuditCallback([CausalGraphAudit(["net.1", "net.2"], top_k=3, stability_resamples=0, name="g")], probe_size=12)
    monitor = AuditEarlyStopping("causal/g/edge_jaccard_previous", mode="max", patience=5)
    quick_trainer(max_epochs=2, callbacks=[audits, monitor, _GrowHead()], num_sanity_val_steps=0).fit(SgdMlp(4), train, val)


class _GrowHead(pl.Callback):
    """At the start of epoch 1, the classifier ``net.2`` gets 6 outputs, the first 3 its old weights."""

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == 1:
            pl_module.net[2] = grown_linear(pl_module.net[2], 6)
            trainer.strategy.setup_optimizers(trainer)


def _never_checked(tmp_path: Path) -> None:  # monitoring: a monitor whose audit runs at no epoch before max_epochs
    _fit(tmp_path, AuditEarlyStopping("causal/ranked/top", patience=1), every=4, max_epochs=2)


def _lightnings_monitor(tmp_path: Path) -> None:  # monitoring.advise_lightning_monitors, a sparse schedule
    with pytest.raises(Exception, match="causal/ranked/top"):  # Lightning's own error, after the warning
        _fit(tmp_path, EarlyStopping("causal/ranked/top"))


def _at_validation(tmp_path: Path) -> None:  # monitoring.advise_lightning_monitors, read when validation ends
    with pytest.raises(Exception, match="causal/ranked/top"):
        _fit(tmp_path, EarlyStopping("causal/ranked/top", check_on_train_epoch_end=False), every=1)


def _not_in_dry_run(tmp_path: Path) -> None:  # monitoring: a monitor tag the dry run did not log
    with pytest.raises(Exception, match="causal/ranked/typo"):
        _fit(tmp_path, AuditEarlyStopping("causal/ranked/typo"), every=1, max_epochs=1)


def _pruning_after(tmp_path: Path) -> None:  # monitoring: ModelPruning listed after the audit callback
    cb = CausalAuditCallback([_Ranked(VECTORS)], probe_size=8, report_dir=tmp_path / "r")
    pruning = ModelPruning("l1_unstructured", amount=0.1)
    ckpt = AuditModelCheckpoint("causal/ranked/top", tmp_path / "c", mode="max")
    trainer(tmp_path, max_epochs=1, callbacks=[cb, pruning, ckpt], enable_checkpointing=True).fit(classifier(), *loaders())


def _scalar_of_a_failed_audit(tmp_path: Path) -> None:  # monitoring._due: the monitored audit failed
    _fit(tmp_path, AuditEarlyStopping("causal/ranked/top", patience=3), max_epochs=2, fail_first=True)


def _resumed_after_the_last_audit_raised(tmp_path: Path) -> None:  # audit.CausalAuditCallback.on_fit_end
    def fit(root: Path, fail_first: bool, ckpt_path: Path | None = None) -> None:
        cb = CausalAuditCallback([_Ranked(VECTORS, fail_first)], every_n_epochs=2, probe_size=8, report_dir=root / "r")
        t = trainer(root, max_epochs=2, callbacks=[cb, OnExceptionCheckpoint(tmp_path, filename="exc")],
                    enable_checkpointing=True)
        t.fit(classifier(), *loaders(), ckpt_path=ckpt_path)

    with pytest.raises(RuntimeError, match="scripted failure"):  # the audit of epoch 1, the last one
        fit(tmp_path / "a", True)
    fit(tmp_path / "b", False, tmp_path / "exc.ckpt")


def _former_captum_tag(tmp_path: Path) -> None:  # monitoring.advise_lightning_monitors: a 'captum/...' tag
    cb = CausalAuditCallback([CaptumBaseline(methods=("Saliency",), patch_size=4)], probe_size=8, report_dir=tmp_path / "r")
    cb.setup(trainer(tmp_path, callbacks=[cb, EarlyStopping("captum/Saliency/spearman")]), classifier(), "fit")


def _unclaimed_state_restored(tmp_path: Path) -> None:  # audit.CausalAuditCallback.on_load_checkpoint
    before = CausalAuditCallback([_Ranked(VECTORS), _Ranked(VECTORS)._renamed("other")], report_dir=tmp_path / "a")
    cb = CausalAuditCallback([_Ranked(VECTORS)], report_dir=tmp_path / "b")
    cb.on_load_checkpoint(trainer(tmp_path, callbacks=[cb]), classifier(), {"callbacks": {before.state_key: before.state_dict()}})


def _earlier_reports(tmp_path: Path) -> None:  # _report_dir.warn_earlier_reports: a reused report_dir
    for _ in range(2):
        _fit(tmp_path, every=1, max_epochs=1)


def _report_dir_not_writable(tmp_path: Path) -> None:  # _report_dir: report_dir a file, on_error="warn"
    (tmp_path / "file").write_text("")
    cb = CausalAuditCallback([_Ranked(VECTORS)], probe_size=8, report_dir=tmp_path / "file", on_error="warn")
    trainer(tmp_path, max_epochs=1, callbacks=[cb]).fit(classifier(), *loaders())


class _Stream(IterableDataset):
    def __iter__(self):  # noqa: ANN204
        x, y = loaders()[0].dataset.tensors
        return iter(zip(x, y))


def _endless_epochs(tmp_path: Path) -> None:  # _fit_checks.warn_endless_epochs: a training stream without a length
    cb = CausalAuditCallback([_Ranked(VECTORS)], probe_size=8, report_dir=tmp_path / "r")
    trainer(tmp_path, max_steps=2, callbacks=[cb]).fit(classifier(), DataLoader(_Stream(), batch_size=8), loaders()[1])


def _after_averaging(tmp_path: Path) -> None:  # _fit_checks: the callback listed after StochasticWeightAveraging
    # the last epoch off the schedule (every_n_epochs=2 of 1 epoch): a fit-end audit, after the averaging swaps
    cb = CausalAuditCallback([_Ranked(VECTORS)], probe_size=8, report_dir=tmp_path / "r", every_n_epochs=2)
    swa = StochasticWeightAveraging(swa_lrs=0.01)
    trainer(tmp_path, max_epochs=1, callbacks=[swa, cb]).fit(classifier(), *loaders())


def _validate(tmp_path: Path) -> None:  # audit.CausalAuditCallback.setup outside a fit
    cb = CausalAuditCallback([_Ranked(VECTORS)], probe_size=8, report_dir=tmp_path / "r")
    trainer(tmp_path, callbacks=[cb]).validate(classifier(), loaders()[1])


def _other_probe(tmp_path: Path) -> None:  # _resume.warn_other_probe
    warn_other_probe({"samples": 8, "shape": [1, 8, 8], "source": "val"}, {"samples": 16, "shape": [1, 8, 8], "source": "val"})


def _several_states(tmp_path: Path) -> None:  # _resume.unclaimed_audit_state
    states = {"CausalAuditCallback{'audits': ['a']}": {}, "CausalAuditCallback{'audits': ['b']}": {}}
    assert unclaimed_audit_state("CausalAuditCallback{'audits': ['c']}", "CausalAuditCallback{", ["c"], [], states) is None


def _lightning_module_as_network(tmp_path: Path) -> None:  # repair/module_arguments: at construction
    CausalRepairModule(classifier(), terms=[])  # its own training_step and configure_optimizers


def _schedule_without_trainer(tmp_path: Path) -> None:  # repair/objective.warn_of_schedules: a plain loop
    torch.manual_seed(0)
    repair = CausalRepairModule(nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2)),
                                terms=[CounterfactualFairnessTerm(AttributeFlip(0), weight=lambda e: 0.0 if e < 1 else 5.0)])
    x = torch.randn(8, 3)
    x[:, 0] = (x[:, 0] > 0).float()
    repair.training_step((x, (x[:, 1] > 0).long()), 0)


def _terms_not_had(tmp_path: Path) -> None:  # repair/term_setup.set_up_terms: a checkpoint's terms absent
    set_up_terms([], nn.Linear(3, 2), {}, ["counterfactual_fairness"], lambda fresh, check_only: None)


CASES: dict[str, tuple[str, Callable[[Path], None]]] = {
    "constant_drift": ("left out this Spearman drift", _constant_drift),
    "no_drift": ("logged no drift scalars", _no_drift),
    "resized": ("computed no such drift: the vector's length changed", _resized),
    "graph_units": ("compared no graph with the previous audit's", _graph_of_other_units),
    "never_checked": ("will check nothing", _never_checked),
    "lightnings_monitor": ("reads the scalar at every epoch end", _lightnings_monitor),
    "at_validation": ("reads the scalar when validation ends", _at_validation),
    "not_in_dry_run": ("is not among the scalars of the audits' dry run", _not_in_dry_run),
    "pruning_after": ("ModelPruning comes after the CausalAuditCallback", _pruning_after),
    "failed_audit": ("found no such scalar after the audit of epoch 1", _scalar_of_a_failed_audit),
    "resumed": ("did not audit epoch 1", _resumed_after_the_last_audit_raised),
    "former_captum_tag": ("monitors a tag no audit logs", _former_captum_tag),
    "unclaimed_state": ("is restored for the audits ['ranked']", _unclaimed_state_restored),
    "earlier_reports": ("already holds reports of epochs [0]", _earlier_reports),
    "report_dir": ("JSON reports will be skipped", _report_dir_not_writable),
    "endless": ("the training dataloader has no length", _endless_epochs),
    "averaging": ("CausalAuditCallback comes after StochasticWeightAveraging", _after_averaging),
    "validate": ("runs its audits during `trainer.fit` only", _validate),
    "other_probe": ("resumes with another probe", _other_probe),
    "several_states": ("holds several audit callbacks' states", _several_states),
    "lightning_module": ("which it uses as a network only", _lightning_module_as_network),
    "schedule": ("runs without a Trainer", _schedule_without_trainer),
    "terms_not_had": ("which this module does not have", _terms_not_had),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_warning_names_the_users_line(tmp_path, case):
    text, make = CASES[case]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make(tmp_path)
    ours = [w for w in caught if text in str(w.message)]
    assert ours, f"no warning {text!r} among {[str(w.message)[:80] for w in caught]}"
    assert {w.filename for w in ours} == {__file__}, [f"{w.filename}:{w.lineno}" for w in ours]
