"""Trial "multitask": a model of several outputs ({"cls", "reg", "reg3"}) that holds its class head's
loss (``self.ce = nn.CrossEntropyLoss()``; the regression's is functional). Explained at a regression
head (``output="reg"``), with that head's real-valued labels, every audit read the held loss as the
task of the head explained: a classifier, whatever the labels. FairnessAudit compared the sigmoid of
outputs of scale 100 (cf_gap 0.0, with TPR and accuracy from real-valued labels) and InputEffectAudit
and SobolAudit explained the 'predicted class' of a 3-output regression, in silence. A key or an
index (``"logits"`` excepted) selects one of several heads: the probe's labels now decide."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import FairnessAudit, InputEffectAudit, Probe, SobolAudit
from lightning_causal.causal import AttributeFlip
from lightning_causal.repair import CounterfactualFairnessTerm


class Heads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(4, 8), nn.Tanh())
        self.cls, self.reg, self.reg3 = nn.Linear(8, 3), nn.Linear(8, 1), nn.Linear(8, 3)
        self.ce = nn.CrossEntropyLoss()  # the class head's loss; the regressions' are F.mse_loss in training_step

    def forward(self, x):
        h = self.body(x)
        return {"cls": self.cls(h), "reg": 100.0 * self.reg(h), "reg3": 50.0 * self.reg3(h)}


def _probe(labels: str):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(32, 4, generator=g)
    x[:, 0] = (torch.rand(32, generator=g) > 0.5).float()
    y = {"cls": (x[:, 1] > 0).long(), "reg": 40 * torch.randn(32, generator=g),
         "reg3": 40 * torch.randn(32, 3, generator=g)}[labels]
    return Probe(x, y)


def test_fairness_of_a_regression_head_is_warned_about_whatever_loss_the_class_head_holds():
    model = Heads().eval()
    with pytest.warns(UserWarning, match="the probe's labels are a regression target"):
        result = FairnessAudit(AttributeFlip(0), output="reg", compare="probability").run(model, _probe("reg"))
    assert "accuracy/group_0" not in result.scalars and "tpr/group_0" not in result.scalars  # no label metrics from real values
    with torch.no_grad():  # the gap it reports is the sigmoid's, ~0 for outputs of this scale: hence the warning
        x = _probe("reg").inputs
        x_cf = x.clone()
        x_cf[:, 0] = 1 - x_cf[:, 0]
        moved = (model(x)["reg"] - model(x_cf)["reg"]).abs().mean()
    assert float(moved) > 1.0 and result.scalars["cf_gap"] < 1e-3


def test_the_predicted_class_of_a_regression_head_is_warned_about():
    model = Heads().eval()
    with pytest.warns(UserWarning, match=r"labels are real-valued \[N, 3\] \(a regression"):
        InputEffectAudit(output="reg3", ace_values=None).run(model, _probe("reg3"))
    with pytest.warns(UserWarning, match="explains the softmax over the model's outputs, but the probe's labels are floats"):
        SobolAudit(output="reg3", n=64, n_bootstrap=10).run(model, _probe("reg3"))


def test_the_repair_term_on_a_regression_head_is_warned_about():
    model, probe = Heads().train(), _probe("reg")
    with pytest.warns(UserWarning, match="regression"):
        CounterfactualFairnessTerm(AttributeFlip(0), output="reg").loss(model, probe.inputs, probe.labels)


def test_the_class_head_and_the_logits_key_keep_the_models_task():
    model = Heads().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # class labels of the class head: nothing to say
        result = FairnessAudit(AttributeFlip(0), output="cls").run(model, _probe("cls"))
        InputEffectAudit(output="cls", ace_values=None).run(model, _probe("cls"))
    assert "accuracy/group_0" in result.scalars

    class Tagger(nn.Module):  # "logits" is the model's own output: its BCEWithLogitsLoss says multi-label
        def __init__(self) -> None:
            super().__init__()
            self.fc, self.loss = nn.Linear(4, 3), nn.BCEWithLogitsLoss()

        def forward(self, x):
            return {"logits": self.fc(x), "features": x}

    one_hot = torch.eye(3)[torch.arange(32) % 3]  # one label per row: only the held loss says multi-label
    with pytest.warns(UserWarning, match="multi-hot"):
        InputEffectAudit(output="logits", ace_values=None).run(Tagger().eval(), Probe(_probe("cls").inputs, one_hot))


def test_a_task_declared_per_head_is_the_heads_task():
    """hparams.task keyed by output: the only way to say a head's task where its labels cannot (counts of a
    regression head read as class indices; one positive per row of a multi-label head read as one class)."""
    model = Heads().eval()
    model.hparams = {"task": {"cls": "multiclass", "reg": "regression", "reg3": "multilabel"}}
    counts = torch.arange(32) % 2  # int64 counts 0/1: class indices of a one-output model by the labels alone
    probe = Probe(_probe("reg").inputs, counts)
    with pytest.warns(UserWarning, match="the probe's labels are a regression target"):
        FairnessAudit(AttributeFlip(0), output="reg", compare="probability").run(model, probe)
    one_hot = torch.eye(3)[torch.arange(32) % 3]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        InputEffectAudit(output="reg3", ace_values=None).run(model, Probe(probe.inputs, one_hot))
    messages = [str(w.message) for w in seen]
    assert any("multi-hot" in m for m in messages), messages  # declared multi-label: no guess to warn about
    assert not any("says nothing of its task" in m for m in messages), messages


def test_the_guess_of_one_class_per_row_names_the_declaration_per_head():
    """A multi-label head selected by key, one positive per row, nothing declared: the guess's warning named
    only the whole model's `task`, which a head selected by key does not read."""
    model = Heads().eval()
    one_hot = torch.eye(3)[torch.arange(32) % 3]
    with pytest.warns(UserWarning, match=r"declare it per head: `\{'task': \{'tags': 'multilabel'"):
        InputEffectAudit(output="reg3", ace_values=None).run(model, Probe(_probe("cls").inputs, one_hot))


def test_the_class_head_of_a_model_holding_its_regression_loss_is_a_classifier():
    """The other way round: the regression head's nn.MSELoss held, the class head explained with class labels.
    The held loss made the class head a regression: FairnessAudit warned and left out its label metrics."""

    class RegressionLossHeld(Heads):
        def __init__(self) -> None:
            super().__init__()
            del self.ce
            self.mse = nn.MSELoss()

    model = RegressionLossHeld().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = FairnessAudit(AttributeFlip(0), output="cls").run(model, _probe("cls"))
    assert "accuracy/group_0" in result.scalars and "tpr/group_0" in result.scalars
