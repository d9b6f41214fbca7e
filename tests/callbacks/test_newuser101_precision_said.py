"""newuser101: nothing a user read said the precision the audits computed in.

A ``Trainer(precision="bf16-true")`` fit's audits compute in bfloat16 (the probe converted to the weights' dtype), a
``"bf16-mixed"`` one's in float32 (outside the fit's autocast, on the float32 weights), a ``"64-true"`` one's in float64;
the JSON report (``schema_version``, ``epoch``, ``stage``, ``audits``, ``audit_seconds``, ``world_size``, ``probe``,
``model``) and the TensorBoard card (``Model: ...``) read the same in all three, so a bfloat16 effect, whose rounding is
0.39% of the outputs, could not be told from a float32 one. The report now holds ``"precision"`` (the weights' dtype,
autocast's where it was on as the audits ran, the Trainer's ``precision``) and the card says it on a line under the model's,
with the rounding of bfloat16 or float16 where the audits computed in it; ``audit_model`` writes the same entry.
"""

import json

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit, audit_model
from lightning_causal.models import LightningClassifier
from lightning_causal.reporting.summary import markdown_summary


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(48, 4, generator=torch.Generator().manual_seed(0))
    return x, (x[:, 0] + 0.5 * x[:, 1] > 0).long()


def _fit(tmp_path, precision: str) -> tuple[dict, str]:
    torch.manual_seed(0)
    x, y = _data()
    model = LightningClassifier(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), lr=1e-2)
    callback = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=16, report_dir=tmp_path / "reports")
    trainer = pl.Trainer(max_epochs=1, precision=precision, callbacks=[callback], default_root_dir=tmp_path,
                         logger=TensorBoardLogger(tmp_path, name="", version=""), enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, DataLoader(TensorDataset(x, y), batch_size=16), DataLoader(TensorDataset(x, y), batch_size=16))
    report = json.loads(next((tmp_path / "reports").glob("epoch_*.json")).read_text())
    events = EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    events.Reload()
    card = events.Tensors("causal/summary/text_summary")[-1].tensor_proto.string_val[0].decode()
    return report, card


@pytest.mark.parametrize(("precision", "weights", "said"), [
    ("bf16-true", "bfloat16", "Precision: the audits computed in bfloat16, the weights' dtype (the fit's `bf16-true`); "
     "an effect smaller than the rounding of the outputs there (0.39% of their size) is rounding"),
    ("bf16-mixed", "float32", "Precision: the audits computed in float32, the weights' dtype (the fit's `bf16-mixed` "
     "autocast is off during the audits)."),
    ("64-true", "float64", "Precision: the audits computed in float64, the weights' dtype (the fit's `64-true`)."),
], ids=["bf16-true", "bf16-mixed", "64-true"])
def test_the_report_and_the_card_say_the_precision(tmp_path, precision, weights, said):
    report, card = _fit(tmp_path, precision)
    assert report["precision"] == {"weights": weights, "other_weights": [], "autocast": None, "trainer": precision}  # before: no such entry
    lines = card.splitlines()
    assert lines[2] == "Model: `LightningClassifier`"
    assert lines[4].startswith(said)  # before: the audit lines followed the model's


def test_audit_model_says_the_precision_and_autocast(tmp_path):
    torch.manual_seed(0)
    x, y = _data()
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    audit_model(net.bfloat16(), [InputEffectAudit(ace_values=None)], (x, y), probe_size=16, report_dir=tmp_path / "a")
    report = json.loads(next((tmp_path / "a").glob("*.json")).read_text())
    assert report["precision"] == {"weights": "bfloat16", "other_weights": [], "autocast": None, "trainer": None}
    with torch.autocast("cpu", dtype=torch.bfloat16):  # a float32 model audited inside the caller's autocast
        audit_model(net.float(), [InputEffectAudit(ace_values=None)], (x, y), probe_size=16, report_dir=tmp_path / "b")
    report = json.loads(next((tmp_path / "b").glob("*.json")).read_text())
    assert report["precision"] == {"weights": "float32", "other_weights": [], "autocast": "bfloat16", "trainer": None}
    line = markdown_summary(0, [], precision=report["precision"]).splitlines()[2]
    assert line.startswith("Precision: the audits computed in bfloat16 under autocast (the weights in float32); an effect")
