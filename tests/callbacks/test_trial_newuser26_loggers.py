"""Trial of newuser26 (an MLOps user): the callback with loggers other than a plain ``TensorBoardLogger``: a logger
of its own (MLflow, W&B, Comet: Lightning knows no ``log_dir`` of theirs), ``logger=False``, a ``prefix``."""

from __future__ import annotations

import csv
import logging
import os

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback
from lightning_causal.audits.base import Audit, AuditResult
from lightning_causal.models import LightningClassifier


class _Scalars(Audit):
    """An audit of scalars only (no figures to draw): a plain value and a per-item series."""

    def run(self, model, probe, *, max_batch_size=None):  # noqa: ANN001, ANN201
        return AuditResult(self.name, scalars={"x": 1.0, "per/0": 2.0, "per/1": 3.0})


class _RunLogger(Logger):
    """A logger of its own, as MLflow's or W&B's: a ``save_dir`` shared by its runs, told apart by ``name`` and
    ``version``; it records its ``log_metrics`` calls."""

    def __init__(self, save_dir: str | None, version: int | str) -> None:
        super().__init__()
        self._save_dir, self._version, self.calls = save_dir, version, []

    @property
    def name(self) -> str:
        return "project"

    @property
    def version(self) -> int | str:
        return self._version

    @property
    def save_dir(self) -> str | None:
        return self._save_dir

    def log_metrics(self, metrics, step=None) -> None:  # noqa: ANN001
        self.calls.append((step, dict(metrics)))

    def log_hyperparams(self, params, *args, **kwargs) -> None:  # noqa: ANN001, ANN002, ANN003
        pass


def _fit(root, logger, callbacks=(), audit_options=None, **options) -> tuple[pl.Trainer, CausalAuditCallback]:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(24, 4, generator=g), torch.randint(0, 2, (24,), generator=g)
    torch.manual_seed(0)
    cb = CausalAuditCallback([_Scalars("s")], probe_size=4, **(audit_options or {}))
    options = {"max_epochs": 1, "enable_checkpointing": any(isinstance(c, ModelCheckpoint) for c in callbacks), **options}
    trainer = pl.Trainer(default_root_dir=str(root), logger=logger, callbacks=[cb, *callbacks], enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, **options)
    trainer.fit(LightningClassifier(nn.Linear(4, 2), lr=0.1), DataLoader(TensorDataset(x[:16], y[:16]), batch_size=8),
                DataLoader(TensorDataset(x[16:], y[16:]), batch_size=8))
    return trainer, cb


@pytest.mark.parametrize("has_save_dir", [True, False], ids=["save_dir", "no_save_dir"])
def test_a_logger_of_its_own_keeps_each_runs_reports_beside_its_checkpoints(tmp_path, has_save_dir):
    """``trainer.log_dir`` of a logger other than TensorBoard's or CSV's is its ``save_dir`` alone (W&B's ``"."``,
    MLflow's ``"./mlruns"``), shared by all its runs: every run wrote ``<save_dir>/causal_audit/epoch_0000.json`` over
    the last one's, where ``ModelCheckpoint`` keeps each run's in ``<save_dir>/<name>/<version>/checkpoints``. The
    reports now go beside those checkpoints, one directory per run."""
    save_dir = str(tmp_path / "runs") if has_save_dir else None
    dirs = []
    for version in (0, "run-b"):
        checkpoint = ModelCheckpoint()
        logger = _RunLogger(save_dir, version)
        trainer, cb = _fit(tmp_path, logger, callbacks=[checkpoint])
        assert os.path.dirname(checkpoint.dirpath) == os.path.dirname(cb.report_dir)
        assert sorted(os.listdir(cb.report_dir)) == ["epoch_0000.json"]
        assert logger.calls[-1][1]["causal/s/x"] == 1.0 and logger.calls[-1][1]["epoch"] == 0
        dirs.append(cb.report_dir)
    root = save_dir or str(tmp_path)
    assert dirs == [os.path.join(root, "project", "version_0", "causal_audit"),
                    os.path.join(root, "project", "run-b", "causal_audit")]


def test_tensorboard_and_csv_reports_stay_in_the_first_loggers_log_dir(tmp_path):
    """TensorBoard's and CSV's own ``log_dir`` (``trainer.log_dir``: the first logger's, ``sub_dir`` included) as before."""
    tb = TensorBoardLogger(tmp_path, name="tb", version=0, sub_dir="sub")
    _, cb = _fit(tmp_path, [tb, CSVLogger(tmp_path, name="csv", version=0)])
    assert cb.report_dir == os.path.join(tb.log_dir, "causal_audit") == str(tmp_path / "tb" / "version_0" / "sub" / "causal_audit")
    _, cb = _fit(tmp_path, [CSVLogger(tmp_path, name="csv", version=1), tb])
    assert cb.report_dir == str(tmp_path / "csv" / "version_1" / "causal_audit")


def _layout_patterns(acc) -> list[str]:
    from tensorboard.plugins.custom_scalar import layout_pb2

    layout = layout_pb2.Layout()
    layout.ParseFromString(acc.Tensors("custom_scalars__config__")[-1].tensor_proto.string_val[0])
    return [tag for category in layout.category for chart in category.chart for tag in chart.multiline.tag]


def test_a_logger_prefix_reaches_the_custom_scalars_layout(tmp_path):
    """``TensorBoardLogger(prefix="p")`` logs every scalar, the audits' too, as ``p-causal/...`` (as ``CSVLogger(prefix=)``
    names its columns, and Lightning the fit's own ``p-val_loss``); the custom-scalars layout named ``^causal/...``:
    every chart of it was empty. Its patterns now carry the prefix and each finds its series."""
    import re

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = TensorBoardLogger(tmp_path, name="tb", version=0, prefix="p")
    _fit(tmp_path, [tb, CSVLogger(tmp_path, name="csv", version=0, prefix="p")])
    acc = EventAccumulator(tb.log_dir, size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    scalars = set(acc.Tags()["scalars"])
    patterns = _layout_patterns(acc)
    assert sorted(patterns) == ["^p\\-causal/s/per/[^/]+$", "^p\\-causal/s/x$"]
    assert all(any(re.search(p, tag) for tag in scalars) for p in patterns), (patterns, scalars)
    with open(tmp_path / "csv" / "version_0" / "metrics.csv", newline="") as fh:
        columns = set(next(csv.reader(fh)))
    mine = {"p-causal/s/x", "p-causal/s/per/0", "p-causal/s/per/1", "p-causal/audit_seconds"}
    assert mine <= scalars and mine <= columns  # one name on every logger


def test_audit_model_writes_to_a_prefixed_logger_under_the_fits_tags(tmp_path):
    """``audit_model(writer=TensorBoardLogger(prefix="p"))`` wrote ``causal/s/x`` beside the fit's ``p-causal/s/x``: a
    series of its own, out of the layout. It now writes under the logger's prefix, as the fit does."""
    import re

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from lightning_causal import audit_model

    tb = TensorBoardLogger(tmp_path, name="tb", version=0, prefix="p")
    audit_model(nn.Linear(4, 2), _Scalars("s"), torch.randn(4, 4), writer=tb, step=7)
    acc = EventAccumulator(tb.log_dir, size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    assert set(acc.Tags()["scalars"]) == {"p-causal/s/x", "p-causal/s/per/0", "p-causal/s/per/1"}
    assert [(e.step, e.value) for e in acc.Scalars("p-causal/s/x")] == [(7, 1.0)]
    assert all(any(re.search(p, t) for t in acc.Tags()["scalars"]) for p in _layout_patterns(acc))


@pytest.mark.parametrize(("logger", "options"), [(False, {}), (False, {"fast_dev_run": True}), ("csv", {"fast_dev_run": True})],
                         ids=["logger_false", "fast_dev_run", "fast_dev_run_csv"])
def test_without_a_logger_the_console_says_where_the_values_and_reports_are(tmp_path, caplog, logger, options):
    """``logger=False``: the line said "scalars still go to every logger, reports to JSON", where there is no logger,
    nor (under ``fast_dev_run``) any report; under ``fast_dev_run``, which puts a ``DummyLogger`` in the place of a
    ``CSVLogger``, it would say the scalars go to ``DummyLogger``. It now says where the values are and names the report
    directory, or says that none is written."""
    logger = CSVLogger(tmp_path, name="csv") if logger == "csv" else logger
    with caplog.at_level(logging.INFO, logger="lightning.pytorch"):
        _, cb = _fit(tmp_path, logger, **options)
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("CausalAuditCallback: no ")]
    none = "`fast_dev_run` replaced the loggers with one that writes nothing" if logger else "no logger at all"
    assert f"({none}), so no histograms, maps or figures are drawn and no scalars logged" in line
    assert "`last_scalars`" in line and "DummyLogger" not in line
    assert cb.last_scalars["causal/s/x"] == 1.0
    if options:
        assert cb.report_dir is None and line.endswith("no JSON report is written (no `report_dir`: under `fast_dev_run`, give one)")
    else:
        assert line.endswith(f"the JSON reports to {tmp_path / 'causal_audit'}") and cb.report_dir == str(tmp_path / "causal_audit")


def test_the_audit_row_is_on_disk_when_the_audit_ends_as_lightnings_own_rows(tmp_path):
    """Lightning calls ``logger.save()`` after each ``log_metrics``; the callback did not, so a ``CSVLogger`` kept the
    audit's row in memory until the fit's next logged step: a process reading ``metrics.csv`` (a dashboard, a job
    that is killed) saw the epoch's ``val_loss`` and not its audit. A callback after the audit reads the file."""
    seen = []

    class Reader(pl.Callback):
        def on_train_epoch_end(self, trainer, pl_module) -> None:  # noqa: ANN001
            with open(os.path.join(trainer.log_dir, "metrics.csv"), newline="") as fh:
                seen.extend((row["step"], row["epoch"]) for row in csv.DictReader(fh) if row.get("causal/s/x"))

    _fit(tmp_path, CSVLogger(tmp_path, name="csv", version=0), callbacks=[Reader()], max_epochs=2, log_every_n_steps=1)
    assert seen == [("1", "0"), ("1", "0"), ("3", "1")]  # epoch 0's row, then both; 2 batches an epoch


def test_the_text_card_names_a_report_outside_the_tensorboard_run_by_its_path(tmp_path):
    """``[CSVLogger, TensorBoardLogger]``: the reports go to the first logger's ``log_dir`` (the CSV run's), but the text
    card in TensorBoard said "Full detail: `epoch_0000.json`", a file not beside its event files. It names the path
    where the report lies elsewhere, the file name where it lies in the TensorBoard run (as before)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    def card(tb) -> str:
        acc = EventAccumulator(tb.log_dir, size_guidance={"tensors": 0})
        acc.Reload()
        return acc.Tensors("causal/summary/text_summary")[-1].tensor_proto.string_val[0].decode()

    tb = TensorBoardLogger(tmp_path, name="tb", version=0)
    _, cb = _fit(tmp_path, [CSVLogger(tmp_path, name="csv", version=0), tb])
    assert card(tb).endswith(f"Full detail: `{os.path.join(cb.report_dir, 'epoch_0000.json')}`")
    tb = TensorBoardLogger(tmp_path, name="tb", version=1)
    _fit(tmp_path, [tb, CSVLogger(tmp_path, name="csv", version=1)])
    assert card(tb).endswith("Full detail: `epoch_0000.json`")


def test_a_logger_on_a_remote_filesystem_gets_the_reports_there(tmp_path, monkeypatch):
    """A logger writing to a URL (``CSVLogger("s3://bucket/logs")``, here fsspec's ``memory://``): the reports went to
    ``Path("memory://...")``, a local directory named ``memory:`` in the working directory, silently. They are now
    written through fsspec beside the logger's files, as Lightning writes its logs and checkpoints, and read back
    by ``load_report``."""
    import fsspec

    from lightning_causal import load_report

    monkeypatch.chdir(tmp_path)
    fs = fsspec.filesystem("memory")
    root = "memory://newuser26-reports"
    try:
        _, cb = _fit(tmp_path / "root", CSVLogger(root, name="csv", version=0), max_epochs=2)
        assert cb.report_dir == f"{root}/csv/version_0/causal_audit"
        assert sorted(fs.ls("/newuser26-reports/csv/version_0/causal_audit", detail=False)) == [
            "/newuser26-reports/csv/version_0/causal_audit/epoch_0000.json",
            "/newuser26-reports/csv/version_0/causal_audit/epoch_0001.json"]
        assert load_report(f"{cb.report_dir}/epoch_0001.json")["audits"]["s"]["scalars"]["x"] == 1.0
        assert not [p for p in os.listdir(tmp_path) if p.startswith("memory")]  # nothing local
        with pytest.warns(UserWarning, match=r"already holds reports of epochs \[0, 1\]"):  # the earlier run's, found there
            _fit(tmp_path / "root", CSVLogger(root, name="csv", version=0), max_epochs=2)
    finally:
        if fs.exists("/newuser26-reports"):
            fs.rm("/newuser26-reports", recursive=True)


def test_audit_model_with_another_logger_says_how_to_log_its_scalars_there(tmp_path):
    """``audit_model(writer=CSVLogger(...))`` was refused naming TensorBoard only; the message now gives the line that
    logs the results' scalars to any logger under the fit's tags, and that line works."""
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    from lightning_causal import audit_model
    from lightning_causal.reporting.tensorboard import scalar_tags

    logger = CSVLogger(tmp_path, name="csv", version=0)
    with pytest.raises(MisconfigurationException, match=r"got CSVLogger; to log the scalars to another logger .*scalar_tags\(r\)"):
        audit_model(nn.Linear(4, 2), _Scalars("s"), torch.randn(4, 4), writer=logger)
    results = audit_model(nn.Linear(4, 2), _Scalars("s"), torch.randn(4, 4))
    logger.log_metrics({tag: v for r in results for tag, v in scalar_tags(r).items()}, step=5)
    logger.save()
    with open(os.path.join(logger.log_dir, "metrics.csv"), newline="") as fh:
        assert list(csv.DictReader(fh)) == [{"step": "5", "causal/s/per/0": "2.0", "causal/s/per/1": "3.0", "causal/s/x": "1.0"}]


def test_a_logger_at_a_file_url_gets_the_reports_in_its_local_run_directory(tmp_path, monkeypatch):
    """``CSVLogger("file:///abs/logs")``: Lightning writes its ``metrics.csv`` to ``/abs/logs/...`` (fsspec's local
    filesystem), but ``Path("file:///abs/logs/...")`` is the relative ``file:/abs/logs/...``: the reports went, silently,
    to a directory named ``file:`` in the working directory. A ``file://`` URL is now the local path it names."""
    from lightning_causal import load_report
    from lightning_causal.reporting.json_report import list_reports

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    root = tmp_path / "logs"
    _, cb = _fit(tmp_path / "root", CSVLogger(root.as_uri(), name="csv", version=0))
    run = root / "csv" / "version_0"
    assert sorted(os.listdir(run)) == ["causal_audit", "hparams.yaml", "metrics.csv"]  # beside Lightning's own files
    assert sorted(os.listdir(run / "causal_audit")) == ["epoch_0000.json"] == list_reports(cb.report_dir)
    assert load_report(f"{cb.report_dir}/epoch_0000.json")["audits"]["s"]["scalars"]["x"] == 1.0
    assert os.listdir(cwd) == []  # no local 'file:' directory


def test_the_text_card_reads_a_report_on_another_windows_drive_as_outside_the_run(monkeypatch):
    """``os.path.commonpath`` raises ``ValueError`` for paths on two Windows drives (``C:`` and ``D:``); the card then
    names the report by its path, as any report outside the run. Windows' path rules (``ntpath``) on any system."""
    import ntpath
    import types

    from lightning_causal.reporting import tensorboard

    monkeypatch.setattr(tensorboard, "os", types.SimpleNamespace(path=ntpath, fspath=os.fspath))
    writer = types.SimpleNamespace(log_dir="C:\\runs\\tb\\version_0")
    outside = "D:\\reports\\epoch_0000.json"
    assert tensorboard._report_name(outside, writer) == outside
    assert tensorboard._report_name("C:\\runs\\tb\\version_0\\causal_audit\\epoch_0000.json", writer) == "epoch_0000.json"
    assert tensorboard._report_name("C:\\runs\\csv\\version_0\\causal_audit\\epoch_0000.json", writer) == (
        "C:\\runs\\csv\\version_0\\causal_audit\\epoch_0000.json")


def test_the_console_line_of_skipped_reports_does_not_blame_fast_dev_run(tmp_path, caplog):
    """A ``report_dir`` that is not writable with ``on_error="warn"``: the reports are skipped (warned at set-up), and the
    no-TensorBoard line said "no `report_dir`: under `fast_dev_run`, give one", in a fit without ``fast_dev_run`` that
    gave one. It now says the reports are skipped as the set-up warning said."""
    blocked = tmp_path / "a_file"
    blocked.write_text("")  # a file where the directory would be: mkdir fails, whoever runs the test
    options = {"report_dir": str(blocked / "causal_audit"), "on_error": "warn"}
    with pytest.warns(UserWarning, match="JSON reports will be skipped"), caplog.at_level(logging.INFO, logger="lightning.pytorch"):
        _, cb = _fit(tmp_path, False, audit_options=options)
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("CausalAuditCallback: no ")]
    assert cb.report_dir is None and cb.last_scalars["causal/s/x"] == 1.0
    assert "fast_dev_run" not in line
    assert line.endswith("no JSON report is written (`report_dir` is not writable: skipped, as warned at set-up)")


def test_a_report_url_whose_filesystem_package_is_missing_is_refused_at_set_up(tmp_path, monkeypatch):
    """``report_dir="s3://..."`` without ``s3fs``: fsspec knows the protocol, not its package. The set-up check names
    ``report_dir`` and fsspec's advice, before training (it made a local directory ``s3:`` before). A protocol fsspec
    registers with a package that is not installed stands for ``s3fs``, which may or may not be here."""
    from fsspec.registry import known_implementations
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(known_implementations, "newuser26fs", {"class": "no_such_package_26.FileSystem",
                                                               "err": "Install no_such_package_26 to access newuser26fs://"})
    with pytest.raises(MisconfigurationException, match=r"`report_dir`.*'newuser26fs://bucket/causal_audit'.*"
                                                         r"Install no_such_package_26 to access newuser26fs://"):
        _fit(tmp_path / "root", False, audit_options={"report_dir": "newuser26fs://bucket/causal_audit"})
    assert os.listdir(tmp_path) == []  # no local 'newuser26fs:' directory, no run
