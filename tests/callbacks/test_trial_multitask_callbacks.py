"""Trial "multitask": docs/your_model.md, "Models of several outputs": a LightningModule whose forward
returns {"cls": logits, "reg": y} and whose training_step sums both losses, audited in two callbacks
(each its head's labels). The snippet runs as printed; the regression head's effects logged in the
second callback's report equal a float64 do-loop on that head, the class head's on its predicted class."""

import json
import re
from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import TensorBoardLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

PAGE = Path(__file__).resolve().parents[2] / "docs" / "your_model.md"


class TwoHeads(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten())
        self.cls, self.reg = nn.Linear(4 * 64, 3), nn.Linear(4 * 64, 1)
        self.ce = nn.CrossEntropyLoss()  # the class head's loss; the regression's is functional

    def forward(self, x):
        h = self.body(x)
        return {"cls": self.cls(h), "reg": 10.0 * self.reg(h)}

    def training_step(self, batch, batch_idx):
        x, y_cls, y_reg = batch
        out = self(x)
        return self.ce(out["cls"], y_cls) + F.mse_loss(out["reg"], y_reg) / 100

    def validation_step(self, batch, batch_idx):
        pass

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


def _data(n: int = 24):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(n, 1, 8, 8, generator=g)
    y_cls = (x[:, 0, :4, :4].mean((1, 2)) > 0).long() + (x[:, 0, 4:, 4:].mean((1, 2)) > 0).long()
    y_reg = 20 * x[:, 0, 2:6, 2:6].mean((1, 2)).unsqueeze(1)
    return x, y_cls, y_reg


def _patch_loop(model: nn.Module, x: torch.Tensor, head) -> torch.Tensor:
    """E_x |f(x) - f(x | do(patch := 0))| per 2x2 patch, in float64, by hand."""
    with torch.no_grad():
        f0 = head(model(x))
        out = []
        for i in range(0, 8, 2):
            for j in range(0, 8, 2):
                xg = x.clone()
                xg[:, :, i:i + 2, j:j + 2] = 0.0
                out.append((f0 - head(model(xg))).abs().mean())
    return torch.stack(out)


def test_the_docs_two_callbacks_audit_each_head_with_its_labels(tmp_path):
    ns: dict = {}
    code = re.search(r"<!-- multitask -->\s*```python\n(.*?)```", PAGE.read_text(), re.S).group(1)
    exec(compile(code, "<your_model.md multitask>", "exec"), ns)  # noqa: S102 - the docs' own example
    model = TwoHeads()
    loader = DataLoader(TensorDataset(*_data()), batch_size=8)
    trainer = pl.Trainer(max_epochs=1, logger=TensorBoardLogger(tmp_path), callbacks=ns["callbacks"], accelerator="cpu",
                         enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False, log_every_n_steps=1)
    trainer.fit(model, loader, loader)
    reports = Path(trainer.logger.log_dir) / "causal_audit"
    assert sorted(p.name for p in reports.glob("*.json")) == ["epoch_0000.json", "epoch_0000_reg_effect+reg_sobol.json"]
    cls_report = json.loads((reports / "epoch_0000.json").read_text())["audits"]
    reg_report = json.loads((reports / "epoch_0000_reg_effect+reg_sobol.json").read_text())["audits"]
    assert sorted(cls_report) == ["cls_captum", "cls_effect"] and sorted(reg_report) == ["reg_effect", "reg_sobol"]
    assert {"causal/reg_effect/mean_abs_effect", "causal/cls_effect/mean_abs_effect"} <= set(trainer.callback_metrics)
    x = _data()[0].double()
    net = model.double().eval()
    reg = _patch_loop(net, x, lambda out: out["reg"][:, 0])
    torch.testing.assert_close(torch.tensor(reg_report["reg_effect"]["vectors"]["mean_abs_effect"], dtype=torch.float64), reg,
                               rtol=1e-4, atol=1e-5)
    pred = net(x)["cls"].argmax(1, keepdim=True)
    cls = _patch_loop(net, x, lambda out: out["cls"].gather(1, pred)[:, 0])
    torch.testing.assert_close(torch.tensor(cls_report["cls_effect"]["vectors"]["mean_abs_effect"], dtype=torch.float64), cls,
                               rtol=1e-4, atol=1e-5)
    assert reg_report["reg_effect"]["meta"].get("outputs") == 1  # figures say "the output", not "class 0"
