"""Review of 799a47f4 (newuser101): the report's ``"precision"`` named the dtype holding most of the weights and the card
said the audits computed in it. A float32 model with one bfloat16 layer (a big float32 input layer, a bfloat16 middle
whose input the forward casts, a float32 head) was reported ``"float32"``, the card said 'computed in float32, the
weights' dtype' with no word on rounding, though every output passes through the bfloat16 layer: the top unit
importance of its middle layer read 0.09795 against 0.09783 for the same weights in float64 (0.09785 both, the middle
layer in float32; /tmp/review_nu101/prec/p3.py, p4.py).

A float64 model audited inside ``torch.autocast("cpu", dtype=torch.bfloat16)`` computes in float64 (autocast casts no
float64 tensor), but the entry said ``"autocast": "bfloat16"`` and the card 'computed in bfloat16 under autocast'. The entry now names the other dtypes
(``"other_weights"``, the coarsest first) and the card their rounding, through the callback and ``audit_model``."""

import json

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit, audit_model
from lightning_causal.models import LightningClassifier
from lightning_causal.reporting.summary import markdown_summary

_SAID = ("Precision: the audits computed in float32, the dtype of most weights (some in bfloat16); an effect smaller than "
         "the rounding of the outputs through the bfloat16 weights (0.39% of their size) is rounding")


class _PartlyBfloat16(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inp, self.mid, self.head = nn.Linear(4, 64), nn.Linear(64, 4).bfloat16(), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.mid(torch.tanh(self.inp(x)).to(torch.bfloat16)))
        return self.head(h.float())


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
    return x, (x[:, 0] > 0).long()


def test_audit_model_names_the_bfloat16_layer(tmp_path):
    torch.manual_seed(0)
    net = _PartlyBfloat16()  # 324 float32 elements, 260 bfloat16
    audit_model(net, [InputEffectAudit(ace_values=None)], _data(), probe_size=16, report_dir=tmp_path)
    report = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert report["precision"] == {"weights": "float32", "other_weights": ["bfloat16"], "autocast": None,
                                   "trainer": None}  # before: no other_weights, nothing said of bfloat16


def test_the_callbacks_card_says_the_rounding_of_the_bfloat16_layer(tmp_path):
    torch.manual_seed(0)
    x, y = _data()
    callback = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=16, report_dir=tmp_path / "reports")
    trainer = pl.Trainer(max_epochs=1, callbacks=[callback], default_root_dir=tmp_path, enable_checkpointing=False,
                         logger=TensorBoardLogger(tmp_path, name="", version=""), enable_progress_bar=False,
                         enable_model_summary=False)
    trainer.fit(LightningClassifier(_PartlyBfloat16(), lr=1e-2), DataLoader(TensorDataset(x, y), batch_size=16))
    report = json.loads(next((tmp_path / "reports").glob("epoch_*.json")).read_text())
    assert report["precision"] == {"weights": "float32", "other_weights": ["bfloat16"], "autocast": None,
                                   "trainer": "32-true"}
    events = EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    events.Reload()
    card = events.Tensors("causal/summary/text_summary")[-1].tensor_proto.string_val[0].decode()
    assert card.splitlines()[4].startswith(_SAID)  # before: 'Precision: the audits computed in float32, the weights' dtype.'


def test_a_float64_model_inside_autocast_is_said_float64(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2)).double()
    dtypes = []
    net[2].register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        audit_model(net, [InputEffectAudit(ace_values=None)], _data(), probe_size=16, report_dir=tmp_path)
    assert set(dtypes) == {torch.float64}  # the audits' passes: autocast left them in float64
    report = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert report["precision"] == {"weights": "float64", "other_weights": [], "autocast": None,
                                   "trainer": None}  # before: "autocast": "bfloat16"
    assert markdown_summary(0, [], precision=report["precision"]).splitlines()[2] == (
        "Precision: the audits computed in float64, the weights' dtype.")
