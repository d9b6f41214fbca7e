"""A classifier whose cross-entropy is a function (``F.cross_entropy``) and which holds an ``nn.MSELoss`` for an
auxiliary loss (a consistency term between two views' features, a distillation of a teacher's logits): label_task
reads the held loss and says "regression", and e92d4820 made a probe without labels read it too, so the figures of a
real classifier said "output k" and both audits warned of a regression. The way out a user reaches for,
``self.hparams.task = "multiclass"``, was not read: the held losses came first. A stated ``task`` now decides before
the losses, and the warnings name it for such a classifier (review of e92d4820)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import CaptumBaseline, InputEffectAudit
from lightning_causal.audits import Probe
from lightning_causal.audits.label_task import label_task
from lightning_causal.reporting.map_data import MapData, sample_title

X = torch.randn(12, 6, generator=torch.Generator().manual_seed(1))


class Classifier(nn.Module):
    def __init__(self, stated: str | None) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 8), nn.ReLU())
        self.head = nn.Linear(8, 3)
        self.consistency = nn.MSELoss()  # the auxiliary term; the task loss is F.cross_entropy in the step
        if stated is not None:
            self.hparams = {"task": stated}  # as LightningModule.hparams holds it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _run(audit, model):
    torch.manual_seed(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = audit.run(model.eval(), Probe(X))
    title = sample_title(MapData(torch.zeros(12, 6), {}, audit.name, result.meta, None), 0)
    return result, title, [str(w.message) for w in caught if "regression" in str(w.message)]


@pytest.mark.parametrize("audit", [InputEffectAudit(ace_values=None), CaptumBaseline(methods=["Saliency"])], ids=["effects", "captum"])
def test_a_classifier_that_states_its_task_is_one_beside_an_auxiliary_regression_loss(audit):
    assert label_task(Classifier("multiclass")) == "multiclass"
    result, title, said = _run(audit, Classifier("multiclass"))
    assert "regression" not in result.meta and said == []
    assert "explains class " in title


def test_the_warning_of_a_held_regression_loss_names_the_classifier_s_way_out():
    _, title, said = _run(InputEffectAudit(ace_values=None), Classifier(None))
    assert "explains output " in title  # the held loss alone still reads as a regression (an autoencoder's)
    assert len(said) == 1 and "self.hparams.task = 'multiclass'" in said[0]


def test_a_stated_regression_beside_a_held_classification_loss_is_a_regression():
    model = nn.Sequential(nn.Linear(6, 3))
    model.loss = nn.CrossEntropyLoss()
    model.hparams = {"task": "regression"}
    assert label_task(model) == "regression"


def test_integer_labels_of_a_model_holding_a_regression_loss_are_not_called_real_valued():
    labels = torch.randint(0, 3, (12,), generator=torch.Generator().manual_seed(2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        InputEffectAudit(ace_values=None).run(Classifier(None).eval(), Probe(X, labels))
    said = [str(w.message) for w in caught if "explains the predicted class" in str(w.message)]
    assert len(said) == 1 and "real-valued" not in said[0]
    assert "the model says it is a regression" in said[0] and "self.hparams.task = 'multiclass'" in said[0]
    assert "its labels [N] of torch.int64 are read as its targets" in said[0]
