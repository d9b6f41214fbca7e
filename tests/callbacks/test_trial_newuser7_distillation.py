"""Knowledge distillation (newuser7 trial): a LightningModule holding a frozen ``self.teacher`` beside
``self.student``, ``forward`` the student. The audits explain the student (layers ``student.fc1``), leave the
teacher's weights and mode alone, and the layer map's defaults leave its layers out. A teacher layer named in an
audit stopped the fit with a message that listed branches, functional code and direct ``forward`` calls but not a
module the forward never calls, nor ``audited_module``, the way to explain another network of the module."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, LayerMapAudit, UnitImportanceAudit


class Distillation(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.teacher = nn.Sequential(nn.Linear(4, 12), nn.ReLU(), nn.Linear(12, 2)).eval().requires_grad_(False)
        self.student = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.student(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        with torch.no_grad():
            soft = F.softmax(self.teacher(x), 1)
        s = self(x)
        return F.kl_div(F.log_softmax(s, 1), soft, reduction="batchmean") + F.cross_entropy(s, y)

    def on_train_epoch_start(self) -> None:
        self.teacher.eval()

    def configure_optimizers(self):
        return torch.optim.SGD(self.student.parameters(), lr=0.1)


def _fit(audits: list, tmp_path: Path) -> tuple[Distillation, CausalAuditCallback]:
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] > 0).long()
    pl.seed_everything(0, verbose=False)
    module, callback = Distillation(), CausalAuditCallback(audits, probe=(x[:16], y[:16]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pl.Trainer(max_epochs=1, logger=False, callbacks=[callback], enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False, default_root_dir=tmp_path).fit(module, DataLoader(TensorDataset(x, y), batch_size=16))
    return module, callback


def test_the_audits_explain_the_student_and_leave_the_teacher_alone(tmp_path: Path) -> None:
    pl.seed_everything(0, verbose=False)
    teacher = copy.deepcopy(Distillation().teacher.state_dict())
    module, callback = _fit([UnitImportanceAudit(["student.0"]), LayerMapAudit()], tmp_path)
    assert "causal/unit_importance/student.0/top1_importance" in callback.last_scalars
    assert callback.last_results["layer_map"].graphs["layer_map"]["layers"] == ["student.0", "student.2"]
    for k, v in module.teacher.state_dict().items():
        assert torch.equal(v, teacher[k])
    assert not module.teacher.training


def test_a_teacher_layer_named_in_an_audit_is_refused_naming_audited_module(tmp_path: Path) -> None:
    with pytest.raises(MisconfigurationException, match=r"'teacher.0'.*never calls \(a distillation's frozen teacher.*audited_module"):
        _fit([UnitImportanceAudit(["teacher.0"])], tmp_path)
