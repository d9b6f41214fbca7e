"""Trial "multitask": the reports and figures of audits of one head of a model of several outputs did not
say which head: a regression head's maps read 'explains the output', a class head's 'explains class 2', the
JSON report held no trace of `output="reg"`. The report's meta now holds the key (or index) and the
per-sample map titles name it."""

import json
from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import TensorBoardLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit
from lightning_causal.reporting.map_data import MapData, sample_title


class TwoHeads(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body, self.cls, self.reg = nn.Linear(4, 8), nn.Linear(8, 3), nn.Linear(8, 1)

    def forward(self, x):
        h = torch.tanh(self.body(x))
        return {"cls": self.cls(h), "reg": self.reg(h)}

    def training_step(self, batch, batch_idx):
        out = self(batch[0])
        return F.cross_entropy(out["cls"], batch[1])

    def validation_step(self, batch, batch_idx):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_the_report_and_the_map_titles_name_the_head(tmp_path):
    g = torch.Generator().manual_seed(1)
    loader = DataLoader(TensorDataset(torch.randn(8, 4, generator=g), torch.randint(0, 3, (8,), generator=g)), batch_size=4)
    audits = [InputEffectAudit(output="cls", ace_values=None, name="cls_effect"),
              InputEffectAudit(output="reg", target=0, ace_values=None, name="reg_effect")]
    trainer = pl.Trainer(max_epochs=1, logger=TensorBoardLogger(tmp_path), callbacks=[CausalAuditCallback(audits)],
                         accelerator="cpu", enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)
    trainer.fit(TwoHeads(), loader, loader)
    report = json.loads((Path(trainer.logger.log_dir) / "causal_audit" / "epoch_0000.json").read_text())["audits"]
    assert report["cls_effect"]["meta"]["output"] == "cls" and report["reg_effect"]["meta"]["output"] == "reg"
    cls = MapData(torch.zeros(1, 4), {}, "cls_effect", report["cls_effect"]["meta"], None)
    reg = MapData(torch.zeros(1, 4), {}, "reg_effect", report["reg_effect"]["meta"], None)
    assert sample_title(cls, 0).endswith(f"explains class {report['cls_effect']['meta']['targets'][0]} of 'cls'")
    assert sample_title(reg, 0).endswith("explains the output 'reg'")
    tuple_head = MapData(torch.zeros(1, 4), {}, "aux", {"targets": [1], "output": 1}, None)
    assert sample_title(tuple_head, 0) == "aux, sample 0: explains class 1 of out[1]"
