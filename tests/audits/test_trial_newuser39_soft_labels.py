"""Soft labels ``[N, C]`` (mixup, CutMix, label smoothing, a teacher's probabilities) in the probe: the
audits that need one class per sample read them by their largest entry, and a teacher's half-precision
probabilities are class distributions, not a regression target.

Before: CounterfactualAudit, FairnessAudit and BackdoorAudit (with a trigger) refused a probe drawn
from mixup / label-smoothed training batches ("per-position or multi-label targets", or "convert them
with `.long()`", which makes every soft row class 0), and bfloat16 / float16 soft labels, whose rows
sum to 1 only to their rounding (1 +- 4e-3), were read as a regression target."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.audits import BackdoorAudit, CounterfactualAudit, FairnessAudit
from lightning_causal.audits.base import Probe
from lightning_causal.audits.label_task import class_distributions, class_indices, regression_labels
from lightning_causal.audits.options import names_meta
from lightning_causal.causal import AttributeFlip, Trigger
from lightning_causal.causal.structure.counterfactuals import CounterfactualSettings


def _model() -> nn.Module:
    """Three classes over 4 columns: class k scores column k + 1 (column 0 is a binary attribute)."""
    model = nn.Linear(4, 3)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]))
        model.bias.zero_()
    return model.eval()


# predicted classes 0, 1, 2, 0, 1, 2 (the largest of columns 1..3)
X = torch.tensor([[0.0, 2.0, 0.0, 0.0], [1.0, 0.0, 2.0, 0.0], [0.0, 0.0, 0.0, 2.0],
                  [1.0, 2.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0], [1.0, 0.0, 0.0, 2.0]])
HARD = torch.tensor([0, 1, 0, 0, 2, 2])  # rows 2 and 4 misclassified
MIXUP = 0.7 * F.one_hot(HARD, 3).float() + 0.3 * F.one_hot(HARD.roll(1), 3).float()  # mixup, lam = 0.7
SMOOTH = F.one_hot(HARD, 3).float() * 0.9 + 0.1 / 3  # label smoothing 0.1


def test_soft_labels_are_class_distributions_read_by_their_argmax():
    assert class_distributions(MIXUP) and class_distributions(SMOOTH)
    assert torch.equal(class_indices(MIXUP), HARD) and torch.equal(class_indices(SMOOTH), HARD)
    assert class_indices(MIXUP).dtype == torch.int64
    assert not class_distributions(MIXUP, task="multilabel") and not class_distributions(MIXUP * 2)  # rows sum to 2
    assert class_indices(HARD) is HARD  # class indices stay as they are
    multi_hot = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    assert class_indices(multi_hot) is multi_hot


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_teacher_probabilities_are_no_regression_target(dtype):
    teacher = torch.tensor([[0.91, 0.01, 0.08], [0.2, 0.3, 0.5], [0.013, 0.977, 0.01]]).to(dtype)
    assert abs(float(teacher.double().sum(1)[0]) - 1) > 1e-4  # bfloat16 rounds 0.91 to 0.91015625
    assert not regression_labels(teacher, 3)
    assert class_distributions(teacher)
    assert torch.equal(class_indices(teacher), torch.tensor([0, 2, 1]))
    assert "regression" not in names_meta(None, None, labels=teacher, outputs=torch.zeros(3, 3))
    assert regression_labels(torch.tensor([[0.9, 0.3, 0.2]], dtype=dtype), 3)  # rows summing to 1.4: still a regression


@pytest.mark.parametrize("labels", [MIXUP, SMOOTH], ids=["mixup", "smoothing"])
def test_counterfactual_audit_explains_the_samples_whose_prediction_is_not_the_soft_labels_argmax(labels):
    r = CounterfactualAudit(max_samples=2, settings=CounterfactualSettings(steps=100, lr=0.1)).run(_model(), Probe(X, labels))
    assert r.scalars["misclassified_rate"] == 2 / 6 and r.meta["labels"] == "argmax of soft labels"
    rows = r.tables["counterfactuals"]
    assert [(row["index"], row["label"], row["predicted"]) for row in rows] == [(2, 0, 2), (4, 2, 1)]


def test_fairness_audit_label_metrics_of_soft_labels_are_those_of_their_argmax():
    model, flip = _model(), AttributeFlip(0)
    soft = FairnessAudit(flip, sensitive=0).run(model, Probe(X, MIXUP))
    hard = FairnessAudit(flip, sensitive=0).run(model, Probe(X, HARD))
    keys = [k for k in hard.scalars if k.startswith(("tpr/", "fpr/", "accuracy/"))]
    assert keys and {k: soft.scalars[k] for k in keys} == {k: hard.scalars[k] for k in keys}
    # by hand (positive = class 1): group 0 (column 0 = 0), rows 0, 2, 4, predicted 0, 2, 1 -> 0, 0, 1, labelled
    # (argmax) 0, 0, 2 -> 0, 0, 0: accuracy 2/3, TPR undefined, FPR 1/3; group 1 rows 1, 3, 5 all agree
    assert soft.scalars["accuracy/group_0"] == pytest.approx(2 / 3) and soft.scalars["fpr/group_0"] == pytest.approx(1 / 3)
    assert soft.scalars["accuracy/group_1"] == 1.0


def test_backdoor_audit_clean_accuracy_and_asr_read_soft_labels_by_their_argmax():
    trigger = Trigger(torch.tensor([0.0, 0.0, 0.0, 1.0]), torch.tensor([0.0, 0.0, 0.0, 5.0]), target=2)
    r = BackdoorAudit(trigger).run(_model(), Probe(X, SMOOTH))
    assert r.scalars["clean_accuracy"] == pytest.approx(4 / 6)
    assert r.scalars["asr"] == 1.0  # column 3 set to 5 makes every sample class 2; rows labelled 2 (argmax) left out
    hard = BackdoorAudit(trigger).run(_model(), Probe(X, HARD))
    assert hard.scalars == r.scalars


class _BCEClassifier(nn.Module):
    """A single-label classifier trained with BCE on mixup targets (timm's BCE option): its loss says multi-label."""

    def __init__(self) -> None:
        super().__init__()
        self.fc, self.loss = _model(), nn.BCEWithLogitsLoss()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


@pytest.mark.parametrize("audit", [CounterfactualAudit(max_samples=1), FairnessAudit(AttributeFlip(0), sensitive=0)],
                         ids=["counterfactual", "fairness"])
def test_soft_labels_of_a_model_that_says_multi_label_are_refused_naming_the_argmax_way_out(audit):
    with pytest.raises(ValueError, match=r"the model says it is multilabel.*b\[1\]\.argmax\(1\)"):
        audit.run(_BCEClassifier().eval(), Probe(X, MIXUP))
