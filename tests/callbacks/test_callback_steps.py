"""Every TensorBoard item of one audit (scalars, images and figures, histograms, text) sits at one
step, the global step of the audited epoch, read back with EventAccumulator; feature and class
names reach the tags, the figures and the text card."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import (
    BackdoorAudit,
    CaptumBaseline,
    CausalAuditCallback,
    InputEffectAudit,
    SobolAudit,
    UnitImportanceAudit,
)
from lightning_causal.datasets.poisoning import patch_trigger
from lightning_causal.models import LightningClassifier
from tests.helpers.lightning import classifier, loaders, trainer

GUIDANCE = {k: 0 for k in ("scalars", "images", "histograms", "tensors")}


def _accumulator(logger: TensorBoardLogger) -> EventAccumulator:
    acc = EventAccumulator(logger.log_dir, size_guidance=GUIDANCE)
    acc.Reload()
    return acc


def _csv_rows(path) -> list[dict[str, str]]:  # noqa: ANN001
    import csv

    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("steps")
    logger = TensorBoardLogger(root, name="tb", version=0)
    audits = [InputEffectAudit(patch_size=4, ace_values=None), UnitImportanceAudit(["model.conv1"], top_k=2),
              SobolAudit(n=32, patch_size=4, n_bootstrap=8, top_k=2), BackdoorAudit(patch_trigger((1, 8, 8)), max_samples=8)]
    cb = CausalAuditCallback(audits, every_n_epochs=2, probe_size=8)
    train, val = loaders()
    t = trainer(root, max_epochs=5, logger=logger, callbacks=[cb])
    t.fit(classifier(), train, val)
    return cb, len(train), _accumulator(logger)


def test_one_step_per_audit_across_item_kinds(image_run):
    cb, batches, acc = image_run
    assert cb.audited_epochs == [1, 3, 4]  # on the schedule, then once at fit end for the last epoch
    expected = [(e + 1) * batches - 1 for e in cb.audited_epochs]  # Lightning's epoch-end step of each audited epoch
    tags = acc.Tags()
    kinds = {
        "scalars": [t for t in tags["scalars"] if t.startswith("causal/") and "drift" not in t and "/S/" not in t
                    and "/ST/" not in t],
        "images": tags["images"],
        "histograms": tags["histograms"],
        "text": ["causal/summary/text_summary"],
    }
    read = {"scalars": acc.Scalars, "images": acc.Images, "histograms": acc.Histograms, "text": acc.Tensors}
    assert {"causal/backdoor/images/trigger", "causal/sobol/intervals/indices", "causal/input_effect/maps/sample_0",
            "causal/unit_importance/bars/importance/model.conv1"} <= set(kinds["images"])
    for kind, names in kinds.items():
        assert names, kind
        for tag in names:
            assert [e.step for e in read[kind](tag)] == expected, (kind, tag)
    texts = [e.tensor_proto.string_val[0].decode() for e in acc.Tensors("causal/summary/text_summary")]
    headings = [f"### Causal audit{' at the end of fit' if e == 4 else ''}, epoch {e} (step {s})" for e, s in zip([1, 3, 4], expected)]
    assert [t.splitlines()[0] for t in texts] == headings  # epoch 4 off the schedule: the audit at the end of fit
    assert "epoch_0004_fit_end.json" in texts[-1]


def test_loggers_see_the_same_step_as_the_rich_content(image_run):
    """Lightning's own epoch-end scalars (``val_loss``) of an audited epoch sit at the audit's step."""
    cb, batches, acc = image_run
    val_steps = {e.step for e in acc.Scalars("val_loss")}
    audit_steps = [e.step for e in acc.Scalars("causal/audit_seconds")]
    assert audit_steps == [(e + 1) * batches - 1 for e in cb.audited_epochs] and set(audit_steps) <= val_steps


FEATURES = ["age", "hours/week", "capital gain", "tenure", "score"]
CLASSES = ["denied", "granted"]


@pytest.fixture(scope="module")
def tabular_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tabular")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 5, generator=g)
    y = (x[:, 0] - 2 * x[:, 2] > 0).long()
    torch.manual_seed(0)
    module = LightningClassifier(nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2)), lr=0.05)
    names = {"feature_names": FEATURES, "class_names": CLASSES}
    audits = [InputEffectAudit(ace_values=None, **names), CaptumBaseline(("Saliency",), **names),
              SobolAudit(n=64, n_bootstrap=8, top_k=2, **names)]
    logger = TensorBoardLogger(root, name="tb", version=0)
    cb = CausalAuditCallback(audits, probe_size=32)
    data = TensorDataset(x, y)
    trainer(root, max_epochs=1, logger=logger, callbacks=[cb]).fit(module, DataLoader(data, batch_size=32),
                                                                    DataLoader(data, batch_size=32))
    return cb, _accumulator(logger)


def test_feature_and_class_names_in_tags_text_and_figures(tabular_run):
    cb, acc = tabular_run
    scalars = set(acc.Tags()["scalars"])
    sobol = {t for t in scalars if t.startswith("causal/sobol/S")}
    assert sobol and all(t.rsplit("/", 1)[1] in {"age", "hours_week", "capital_gain", "tenure", "score"} for t in sobol)
    text = acc.Tensors("causal/summary/text_summary")[-1].tensor_proto.string_val[0].decode()
    top = cb.last_results["input_effect"].tables["top_groups"][0]
    assert top["feature"] in FEATURES and f"top_groups: {top['feature']} (" in text
    assert "indices: " in text and any(f in text.split("- **sobol**")[1] for f in FEATURES)
    images = set(acc.Tags()["images"])
    assert {"causal/input_effect/maps/top_features", "causal/captum_baseline/maps/top_features"} <= images
    assert not any("sample_" in t for t in images)  # tabular: bar charts, no one-pixel strips
    meta = cb.last_results["captum_baseline"].meta
    assert meta["feature_names"] == FEATURES and meta["class_names"] == CLASSES and len(meta["targets"]) == 32


def test_tabular_warnings_once_per_fit(tmp_path):
    """A warning raised inside every audit is shown once per fit (and again in a new fit)."""
    import warnings

    from lightning_causal.audits.base import Audit, AuditResult

    class Noisy(Audit):
        def run(self, model, probe, *, max_batch_size=None):  # noqa: ANN001
            warnings.warn("Setting forward, backward hooks on ReLU", UserWarning, stacklevel=1)
            return AuditResult(self.name, scalars={"x": 1.0})

    cb = CausalAuditCallback([Noisy("noisy")], probe_size=4, report_dir=tmp_path / "r")
    for _ in range(2):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer(tmp_path, max_epochs=3, callbacks=[cb]).fit(classifier(), *loaders())
        assert sum("hooks on ReLU" in str(w.message) for w in caught) == 1 and cb.audited_epochs == [0, 1, 2]


class TwoOptimizers(LightningClassifier):
    """Manual optimisation stepping two optimizers per batch (GAN-style): ``global_step`` grows by
    two per batch, Lightning's logging step by one."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        super().__init__(nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 10)), lr=0.05)
        self.automatic_optimization = False

    def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        x, y = batch
        for opt in self.optimizers():
            opt.zero_grad()
            self.manual_backward(nn.functional.cross_entropy(self(x), y))
            opt.step()

    def configure_optimizers(self):  # noqa: ANN201
        return [torch.optim.SGD(self.model[1].parameters(), lr=0.05), torch.optim.SGD(self.model[3].parameters(), lr=0.05)]


@pytest.mark.parametrize(("module", "options"), [(TwoOptimizers, {}), (classifier, {"accumulate_grad_batches": 2})],
                         ids=["manual_two_optimizers", "accumulate_grad_batches"])
def test_scalars_share_the_step_of_val_loss(tmp_path, module, options):
    """Every audit, the fit-end one included, sits at the CSV step of its epoch's ``val_loss``."""
    from lightning.pytorch.loggers import CSVLogger

    cb = CausalAuditCallback([InputEffectAudit(patch_size=4, ace_values=None)], every_n_epochs=2, probe_size=8)
    t = trainer(tmp_path, max_epochs=3, logger=CSVLogger(tmp_path, name="csv", version=0), callbacks=[cb], **options)
    t.fit(module(), *loaders(batch_size=16))
    rows = _csv_rows(tmp_path / "csv" / "version_0" / "metrics.csv")
    val = {int(r["epoch"]): int(r["step"]) for r in rows if r["val_loss"]}
    audits = [int(r["step"]) for r in rows if r["causal/audit_seconds"]]
    assert cb.audited_epochs == [1, 2] and audits == [val[1], val[2]]
    per_epoch = 6 if module is TwoOptimizers else 3  # 6 batches: 6 logging steps (12 optimizer steps), or 3 when accumulating
    assert audits == [2 * per_epoch - 1, 3 * per_epoch - 1]


def test_the_fit_end_audit_runs_before_the_strategy_teardown(tmp_path):
    """Lightning's ``Strategy.teardown`` moves the module to the CPU before ``on_fit_end``; the
    fit-end audit runs before it, on the training device, and logs and reports as usual."""
    from lightning.pytorch.loggers import CSVLogger

    from lightning_causal.audits.base import Audit, AuditResult
    from tests.helpers.lightning import reports

    torn_down, seen = [], []

    class Spy(Audit):
        def run(self, model, probe, *, max_batch_size=None):  # noqa: ANN001
            seen.append((bool(torn_down), next(model.parameters()).device == probe.first.device))
            return AuditResult(self.name, scalars={"x": 1.0})

    cb = CausalAuditCallback([Spy("spy")], every_n_epochs=5, probe_size=4, report_dir=tmp_path / "r")
    t = trainer(tmp_path, max_epochs=2, callbacks=[cb], logger=CSVLogger(tmp_path, name="csv", version=0))
    teardown = t.strategy.teardown
    t.strategy.teardown = lambda: (torn_down.append(True), teardown())[1]
    t.fit(classifier(), *loaders())
    assert torn_down and seen == [(False, True), (False, True)]  # the dry run, then the fit-end audit of epoch 1
    assert cb.audited_epochs == [1] and list(reports(cb.report_dir)) == ["epoch_0001_fit_end.json"]
    rows = _csv_rows(tmp_path / "csv" / "version_0" / "metrics.csv")
    val_step = next(int(r["step"]) for r in rows if r["val_loss"] and r["epoch"] == "1")
    assert [int(r["step"]) for r in rows if r["causal/spy/x"]] == [val_step]


def test_no_fit_end_audit_after_an_exception(tmp_path):
    class Crash(LightningClassifier):
        def on_train_epoch_end(self) -> None:
            if self.current_epoch == 1:
                raise RuntimeError("boom")

    torch.manual_seed(0)
    module = Crash(classifier().model, lr=0.05)
    cb = CausalAuditCallback([InputEffectAudit(patch_size=4, ace_values=None)], every_n_epochs=5, probe_size=4,
                             report_dir=tmp_path / "r")
    with pytest.raises(RuntimeError, match="boom"):
        trainer(tmp_path, max_epochs=3, callbacks=[cb]).fit(module, *loaders())
    assert cb.audited_epochs == [] and not list((tmp_path / "r").glob("*.json"))
