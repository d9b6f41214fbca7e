"""The callback and the repair module under Trainer features users turn on: several audit callbacks,
checkpoint and resume, manual optimization with two optimizers, loggers. A tiny MLP with BatchNorm
on scikit-learn's iris (150 rows, 4 columns), a few steps per run."""

from __future__ import annotations

import functools

import lightning.pytorch as pl
import torch
from sklearn.datasets import load_iris
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit, UnitImportanceAudit, load_report


@functools.lru_cache(maxsize=1)
def _iris() -> tuple[Tensor, Tensor]:
    data = load_iris()
    x = torch.tensor(data.data, dtype=torch.float32)
    x = (x - x.mean(0)) / x.std(0)
    order = torch.randperm(150, generator=torch.Generator().manual_seed(0))
    return x[order], torch.tensor(data.target)[order]


def iris_loaders(shuffle: bool = False) -> tuple[DataLoader, DataLoader]:
    x, y = _iris()
    return (DataLoader(TensorDataset(x[:64], y[:64]), batch_size=16, shuffle=shuffle),
            DataLoader(TensorDataset(x[120:], y[120:]), batch_size=30))


class IrisMLP(pl.LightningModule):
    """Linear -> BatchNorm -> ReLU -> Linear, SGD with momentum."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return F.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.log("val_loss", F.cross_entropy(self(batch[0]), batch[1]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)


def fit(root, callbacks, max_epochs: int = 2, ckpt_path=None, **trainer_options) -> IrisMLP:
    pl.seed_everything(0, verbose=False)
    model = IrisMLP()
    options = {"logger": False, **trainer_options}
    trainer = pl.Trainer(default_root_dir=str(root), max_epochs=max_epochs, accelerator="cpu", deterministic=True,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=callbacks, **options)
    trainer.fit(model, *iris_loaders(), ckpt_path=ckpt_path)
    return model


def test_two_audit_callbacks_keep_each_others_reports(tmp_path):
    """Two callbacks on one run (cheap audits every epoch, costly ones every second epoch, as in the
    tabular recipe) write to the same default ``report_dir``; at an epoch both audit, the second's
    report replaced the first's ``epoch_0001.json``, losing its audits (and the first's text card
    named a file without them)."""
    every = CausalAuditCallback([InputEffectAudit()], probe_size=8)
    second = CausalAuditCallback([UnitImportanceAudit(["net.2"])], probe_size=8, every_n_epochs=2)
    fit(tmp_path, [every, second], enable_checkpointing=False)
    assert every.report_dir == second.report_dir
    files = {p.name: list(load_report(p)["audits"]) for p in sorted((tmp_path / "causal_audit").glob("*.json"))}
    assert files == {"epoch_0000.json": ["input_effect"], "epoch_0001.json": ["input_effect"],
                     "epoch_0001_unit_importance.json": ["unit_importance"]}


class _RunsOnUnpickling:
    """An object whose unpickling calls ``_record`` (what a hostile checkpoint would run)."""

    calls: list[str] = []

    def __reduce__(self):
        return (_record, ("unpickled",))


def _record(value: str) -> str:
    _RunsOnUnpickling.calls.append(value)
    return value


def test_the_repaired_models_weights_are_read_without_unpickling_objects(tmp_path):
    """``CausalRepairModule.model_state_dict(path)`` loaded the checkpoint with ``weights_only=False``:
    a shared checkpoint ran its pickled code on loading (the design allows ``weights_only=True`` only)."""
    from lightning.pytorch.utilities.exceptions import MisconfigurationException

    from lightning_causal import CausalRepairModule

    path = tmp_path / "repair.ckpt"
    torch.save({"state_dict": {"model.weight": torch.ones(2)}, "hyper_parameters": {"x": _RunsOnUnpickling()}}, path)
    _RunsOnUnpickling.calls.clear()
    try:
        CausalRepairModule.model_state_dict(path)
    except MisconfigurationException as err:
        assert "weights_only" in str(err) and "torch.load" in str(err)
    assert _RunsOnUnpickling.calls == []
    torch.save({"state_dict": {"model.weight": torch.ones(2)}, "epoch": 3}, path)  # a plain checkpoint still loads
    assert torch.equal(CausalRepairModule.model_state_dict(path)["weight"], torch.ones(2))


def test_csv_rows_of_the_audits_name_their_epoch(tmp_path):
    """In a ``CSVLogger``'s metrics.csv, the rows the callback logged had an empty ``epoch`` column
    (Lightning's own rows carry it): grouping the file by epoch dropped every causal scalar."""
    import csv

    from lightning.pytorch.loggers import CSVLogger

    cb = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=8, every_n_epochs=2)
    fit(tmp_path, [cb], max_epochs=3, logger=CSVLogger(tmp_path, name="csv", version=0), enable_checkpointing=False)
    with open(tmp_path / "csv" / "version_0" / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    audited = [(r["step"], r["epoch"]) for r in rows if r["causal/input_effect/mean_abs_effect"]]
    val = {r["epoch"]: r["step"] for r in rows if r["val_loss"]}
    assert cb.audited_epochs == [1, 2]  # epoch 2: the fit-end audit
    assert audited == [(val["1"], "1"), (val["2"], "2")]


def _audit_callback(root) -> CausalAuditCallback:
    return CausalAuditCallback([InputEffectAudit(ace_values=None), UnitImportanceAudit(["net.2"], top_k=3)], probe_size=8,
                               report_dir=root / "reports")


def _scalars(report_dir, epoch: int) -> dict[str, float]:
    doc = load_report(report_dir / f"epoch_{epoch:04d}.json")
    return {f"{a}/{k}": v for a, r in doc["audits"].items() for k, v in r["scalars"].items()}


def test_a_resumed_fit_with_the_callback_equals_the_uninterrupted_one(tmp_path):
    """Checkpoints written at validation end (``check_val_every_n_epoch=2``: before that epoch's audit)
    and resumed: same weights and BatchNorm statistics bit for bit, same audited epochs and the same
    reports, drift included, as one uninterrupted fit (as without the callback)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    whole, cut = tmp_path / "whole", tmp_path / "cut"
    options = {"check_val_every_n_epoch": 2}
    reference = _audit_callback(whole)
    full = fit(whole, [reference], max_epochs=3, enable_checkpointing=False, **options)
    fit(cut, [_audit_callback(cut), ModelCheckpoint(dirpath=cut / "ckpt", save_top_k=-1)], max_epochs=2, **options)
    (path,) = (cut / "ckpt").glob("epoch=1-*.ckpt")
    resumed_cb = _audit_callback(cut)
    resumed = fit(cut, [resumed_cb], max_epochs=3, ckpt_path=path, enable_checkpointing=False, **options)
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert reference.audited_epochs == resumed_cb.audited_epochs == [0, 1, 2]
    for epoch in (1, 2):
        assert _scalars(whole / "reports", epoch) == _scalars(cut / "reports", epoch)
    assert "input_effect/drift/mean_abs_effect/spearman" in _scalars(cut / "reports", 2)


class _OwnHooks(IrisMLP):
    """A module whose training depends on its own hooks: an lr decay at each epoch end, a gradient
    clipping of its own and a warm-up in ``optimizer_step``."""

    def on_train_epoch_end(self) -> None:
        for group in self.optimizers().param_groups:
            group["lr"] *= 0.1
        self.log("decayed_lr", self.optimizers().param_groups[0]["lr"])

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:  # noqa: ANN001
        self.clip_gradients(optimizer, gradient_clip_val=0.01, gradient_clip_algorithm="norm")

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None) -> None:  # noqa: ANN001
        if self.trainer.global_step < 3:  # a warm-up (of the momentum here), as Lightning's docs write one
            optimizer.param_groups[0]["momentum"] = 0.5
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)


def test_a_wrapped_modules_own_hooks_run_as_unwrapped(tmp_path):
    """``CausalRepairModule.wrap`` called none of the wrapped module's hooks: its lr decay and its
    gradient clipping were skipped, so a repair whose term has weight 0 trained other weights than
    the module alone (max |difference| 0.72 after 3 epochs), without a word."""
    from lightning_causal import CausalRepairModule, CounterfactualFairnessTerm
    from lightning_causal.causal import AttributeFlip

    def run(wrap: bool) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        pl.seed_everything(0, verbose=False)
        module = _OwnHooks()
        fitted = CausalRepairModule.wrap(module, [CounterfactualFairnessTerm(AttributeFlip(0), 0, weight=0.0)]) if wrap else module
        trainer = pl.Trainer(default_root_dir=str(tmp_path), max_epochs=3, accelerator="cpu", logger=False,
                             enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)
        trainer.fit(fitted, *iris_loaders())
        return module.state_dict(), dict(trainer.callback_metrics)

    (plain, plain_metrics), (wrapped, wrapped_metrics) = run(False), run(True)
    for name, value in plain.items():
        assert torch.equal(value, wrapped[name]), name
    assert float(wrapped_metrics["decayed_lr"]) == float(plain_metrics["decayed_lr"])  # its log reaches the trainer


def test_a_report_dir_of_the_wrong_type_is_named():
    """``report_dir=3`` raised Python's ``TypeError: expected str, bytes or os.PathLike object, not int``."""
    import pytest
    from lightning.pytorch.utilities.exceptions import MisconfigurationException

    with pytest.raises(MisconfigurationException, match=r"`report_dir` to be None, a str or an os.PathLike but got 3"):
        CausalAuditCallback([InputEffectAudit()], report_dir=3)


def test_wrapping_a_module_with_a_batch_transfer_hook_calls_it_without_a_warning():
    """wrap() warned that it would not call the module's ``on_after_batch_transfer``; it now does
    (tests/repair/test_wrap_data_hooks.py checks the fits)."""
    import warnings

    from lightning_causal import CausalRepairModule, CounterfactualFairnessTerm
    from lightning_causal.causal import AttributeFlip

    class Normalising(IrisMLP):
        def on_after_batch_transfer(self, batch, dataloader_idx):  # noqa: ANN001, ANN201
            return batch[0] * 2, batch[1]

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        repair = CausalRepairModule.wrap(Normalising(), [CounterfactualFairnessTerm(AttributeFlip(0), 0)])
    assert torch.equal(repair.on_after_batch_transfer((torch.ones(1, 4), None), 0)[0], torch.full((1, 4), 2.0))
