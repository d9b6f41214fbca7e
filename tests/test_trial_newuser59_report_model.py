"""Which weights a report explains (newuser59 trial: a Mean Teacher whose EMA copy is audited through
``audited_module``). The JSON reports named the probe but not the network: a fit auditing the EMA copy and one
auditing the trained network wrote reports of the same keys, and a report read later (a CI gate, a comparison of two
runs) could not tell whose weights its numbers were. Reports now hold ``"model"``: the module's class, or
``"<class>.audited_module (<network's class>)"``, in the callback's reports and audit_model's alike."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit, audit_model, load_report

X = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
Y = (X[:, 0] > 0).long()


class Teacher(pl.LightningModule):
    def __init__(self, ema: bool) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        self.ema = AveragedModel(self.net, multi_avg_fn=get_ema_multi_avg_fn(0.5)) if ema else None

    @property
    def audited_module(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self(batch[0]), batch[1])

    def on_train_batch_end(self, outputs, batch, batch_idx):
        if self.ema is not None:
            self.ema.update_parameters(self.net)

    def configure_optimizers(self):
        return torch.optim.SGD(self.net.parameters(), lr=0.5)


def _report(tmp_path, ema: bool) -> tuple[dict, dict]:
    torch.manual_seed(0)
    module = Teacher(ema)
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path,
                         callbacks=[CausalAuditCallback([InputEffectAudit(ace_values=None, target=0)], probe=X,
                                                        report_dir=str(tmp_path / "fit"))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, DataLoader(TensorDataset(X, Y), batch_size=8))
        audit_model(module, [InputEffectAudit(ace_values=None, target=0)], X, report_dir=str(tmp_path / "after"))
    return load_report(tmp_path / "fit" / "epoch_0000.json"), load_report(tmp_path / "after" / "epoch_0000.json")


def test_reports_name_the_network_explained(tmp_path):
    fit, after = _report(tmp_path / "ema", ema=True)
    assert fit["model"] == after["model"] == "Teacher.audited_module (Sequential)"  # before: no "model" entry
    plain_fit, plain_after = _report(tmp_path / "plain", ema=False)
    assert plain_fit["model"] == plain_after["model"] == "Teacher"
    # the two fits' numbers differ: the EMA copy's weights are not the trained network's
    assert fit["audits"]["input_effect"]["scalars"] != plain_fit["audits"]["input_effect"]["scalars"]
    assert audit_model(nn.Linear(4, 2), [InputEffectAudit(ace_values=None)], X, report_dir=str(tmp_path / "lin")) and \
        load_report(tmp_path / "lin" / "epoch_0000.json")["model"] == "Linear"
