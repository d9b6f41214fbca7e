"""A cosine classifier (a prototype head on ReLU features: every logit in [0, 1]) trained by `F.cross_entropy` in its
step got FairnessAudit's "independent probabilities" warning, which named only `compare='output'` and class k's logit,
not how to say that the outputs are logits (final_read_B F5). The shared words now name both ways the package reads,
and each one, followed, silences the warning."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.audits import FairnessAudit
from lightning_causal.audits.base import Probe
from lightning_causal.causal import AttributeFlip


class CosineHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 16), nn.ReLU())
        self.protos = nn.Parameter(torch.rand(3, 16))

    def forward(self, x):
        return F.normalize(self.body(x), dim=1) @ F.normalize(self.protos.abs(), dim=1).T  # cosines in [0, 1]


def _warned(model: nn.Module) -> list[str]:
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(1))
    x[:, 3] = (x[:, 3] > 0).float()
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        FairnessAudit(AttributeFlip(3)).run(model, Probe(x, y))
    return [str(w.message) for w in caught if "independent probabilities" in str(w.message)]


def _model() -> CosineHead:
    torch.manual_seed(0)
    return CosineHead().eval()


def test_the_warning_names_how_to_say_the_outputs_are_logits():
    (message,) = _warned(_model())
    assert "`self.loss_fn = nn.CrossEntropyLoss()`" in message
    assert "`self.save_hyperparameters({'task': 'multiclass'})`" in message


@pytest.mark.parametrize("way", ["loss", "task"])
def test_each_named_way_silences_it(way):
    model = _model()
    if way == "loss":
        model.loss_fn = nn.CrossEntropyLoss()
    else:
        model.hparams = {"task": "multiclass"}  # what save_hyperparameters gives a LightningModule
    assert _warned(model) == []
