"""The TensorBoard text card names the network the audits explain, as the JSON report's ``"model"`` (a66f785d gave the
report that entry; the card, what a user reads in TensorBoard, still did not say whether the numbers were an EMA copy's,
returned by ``audited_module``, or the trained network's). One source for both: ``_trainer_facts.explained_name``."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit, audit_model, load_report
from lightning_causal.reporting import markdown_summary

X = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
Y = (X[:, 0] > 0).long()


class Student(pl.LightningModule):
    """Trains ``net``; its ``audited_module`` is a copy (an EMA's, here frozen at the start)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        self.copy = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).requires_grad_(False)

    @property
    def audited_module(self) -> nn.Module:
        return self.copy

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self(batch[0]), batch[1])

    def configure_optimizers(self):
        return torch.optim.SGD(self.net.parameters(), lr=0.1)


def _card(log_dir: str) -> str:
    acc = EventAccumulator(log_dir, size_guidance={"tensors": 0})
    acc.Reload()
    return acc.Tensors("causal/summary/text_summary")[-1].tensor_proto.string_val[0].decode()


def test_the_card_names_the_network_as_the_report_does(tmp_path):
    torch.manual_seed(0)
    module = Student()
    logger = TensorBoardLogger(tmp_path, name="tb", version=0)
    trainer = pl.Trainer(max_epochs=1, logger=logger, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path,
                         callbacks=[CausalAuditCallback([InputEffectAudit(ace_values=None, target=0)], probe=X,
                                                        report_dir=str(tmp_path / "fit"))])
    after = TensorBoardLogger(tmp_path, name="after", version=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, DataLoader(TensorDataset(X, Y), batch_size=8))
        audit_model(module, [InputEffectAudit(ace_values=None, target=0)], X, writer=after,
                    report_dir=str(tmp_path / "after"))
    line = "Model: `Student.audited_module (Sequential)`"
    for card, report in ((_card(logger.log_dir), tmp_path / "fit"), (_card(after.log_dir), tmp_path / "after")):
        assert line in card.splitlines(), card  # before: no line naming the network
        assert load_report(report / "epoch_0000.json")["model"] == "Student.audited_module (Sequential)"


def test_the_line_sits_under_the_heading_and_only_where_given():
    from lightning_causal.audits.base import AuditResult

    r = AuditResult("ie", scalars={"mean_abs_effect": 0.5})
    assert markdown_summary(0, [r], model="Net").splitlines()[:4] == ["### Causal audit, epoch 0", "", "Model: `Net`", ""]
    assert "Model:" not in markdown_summary(0, [r])
    fit_end = markdown_summary(3, [r], stage="fit_end", model="Net").splitlines()
    assert fit_end[0] == "### Causal audit at the end of fit, epoch 3" and fit_end[4] == "Model: `Net`"
