"""A new user's trial of loggers (newuser47): a fit resumed into the first part's ``CSVLogger`` version, as
docs/recipes.md ("Where the resumed fit writes") says: Lightning rewrites ``metrics.csv`` with the resumed fit's rows,
and the JSON reports keep every part's audits."""

import csv
import warnings

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit, load_report
from lightning_causal.models import MLP, LightningClassifier


def _fit(tmp_path, max_epochs: int, ckpt_path=None) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 4, generator=g)
    data = TensorDataset(x, (x[:, 0] > 0).long())
    pl.seed_everything(0)
    cb = CausalAuditCallback([InputEffectAudit(ace_values=None)], every_n_epochs=2, probe_size=8,
                             report_dir=tmp_path / "reports")
    trainer = pl.Trainer(max_epochs=max_epochs, logger=CSVLogger(tmp_path, name="csv", version=0),
                         callbacks=[cb, ModelCheckpoint(dirpath=tmp_path / "ck", save_last=True)],
                         enable_progress_bar=False, enable_model_summary=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's advice on few batches and its note on the logs it deletes
        trainer.fit(LightningClassifier(MLP(4, hidden=(8,), out_features=2), lr=1e-2),
                    DataLoader(data, batch_size=16), DataLoader(data, batch_size=16), ckpt_path=ckpt_path)


def test_a_csv_logger_resumed_into_its_version_keeps_only_the_resumed_rows_and_the_reports_keep_all(tmp_path):
    _fit(tmp_path, 4)
    _fit(tmp_path, 6, ckpt_path=tmp_path / "ck" / "last.ckpt")
    with open(tmp_path / "csv" / "version_0" / "metrics.csv") as f:
        audited = sorted({int(r["epoch"]) for r in csv.DictReader(f) if r.get("causal/input_effect/top5_share")})
    assert audited == [5]  # epochs 1 and 3 of the first part are gone from metrics.csv
    reports = sorted(p.name for p in (tmp_path / "reports").iterdir())
    assert reports == ["epoch_0001.json", "epoch_0003.json", "epoch_0005.json"]
    assert [load_report(tmp_path / "reports" / r)["epoch"] for r in reports] == [1, 3, 5]
