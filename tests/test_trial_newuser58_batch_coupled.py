"""newuser58's trial: a model whose eval-mode output for a sample depends on the other samples of its batch (scores
centred over the batch; attention across the batch's rows, a memory of the batch). InputEffectAudit, UnitImportanceAudit,
CaptumBaseline, SobolAudit, CausalGraphAudit and LayerMapAudit refused it ("Expected the model to treat samples
independently"), but CounterfactualAudit, FairnessAudit and BackdoorAudit, counterfactual_explanation and
counterfactual_fairness_gap ran it silently, on batches of their own choosing: a model that centres its score over the
batch, probe x0 = [1, 1.5, 3, 10] all labelled class 0, predicts class 1 for samples 0-2 in the probe's batch (mean
3.875) but class 0 for sample 2 in the search's batch of the three misclassified samples (mean 1.83), so CounterfactualAudit reported
a counterfactual for it with l1 = 0, changing nothing (success_rate 1/3, mean_l1 0.0 before); flipping the attribute
x1 of every sample raises every score and the batch's mean alike, so counterfactual_fairness_gap and FairnessAudit gave
cf_gap 0.0 where the flip of one sample in the probe's batch moves its probability by 0.290 (by hand). Each now refuses such a
model in the other estimators' words; the audits' dry runs check the whole probe (their 2 samples are too few to
compare), so the callback and audit_model refuse it before any audit runs."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import BackdoorAudit, CounterfactualAudit, FairnessAudit, audit_model
from lightning_causal.audits import Probe
from lightning_causal.causal import (
    AttributeFlip,
    counterfactual_explanation,
    counterfactual_fairness_gap,
)

INDEPENDENT = "Expected the model to treat samples independently"


class Centred(nn.Module):
    """Logits ``[s, -s]`` with ``s = x0 + x1 - mean over the batch of (x0 + x1)``: class 0 where a sample's score is
    above its batch's mean, in eval mode too."""

    def forward(self, x):
        s = x[:, :1] + x[:, 1:2]
        s = s - s.mean(0, keepdim=True)
        return torch.cat([s, -s], 1)


class RowWise(nn.Module):
    """The same score against a fixed mean 4: each sample's class is its own."""

    def forward(self, x):
        s = x[:, :1] + x[:, 1:2] - 4.0
        return torch.cat([s, -s], 1)


X = torch.tensor([[1.0, 0.0], [1.5, 0.0], [3.0, 0.0], [10.0, 0.0]])  # column 1: a binary attribute, 0 in every sample
Y = torch.zeros(4, dtype=torch.long)


def test_the_batch_decides_the_class_by_hand():
    """The premise, by hand: in the probe's batch (mean 3.875) samples 0-2 are class 1; in a batch of those three (mean 1.83)
    sample 2 is class 0 with no change at all, what the search reported as its counterfactual."""
    model = Centred()
    assert model(X).argmax(1).tolist() == [1, 1, 1, 0]
    assert model(X[:3]).argmax(1).tolist() == [1, 1, 0]
    assert RowWise()(X[:3]).argmax(1).tolist() == RowWise()(X).argmax(1)[:3].tolist() == [1, 1, 1]
    # do(x1 := 1) on sample 2 alone, in the probe's batch: s = 3 - 3.875 -> 4 - 4.125, P(class 0) = sigmoid(2 s)
    flipped = X.clone()
    flipped[2, 1] = 1.0
    moved = model(flipped).softmax(1)[2, 0] - model(X).softmax(1)[2, 0]
    assert float(moved) == pytest.approx(float(torch.sigmoid(torch.tensor(-0.25)) - torch.sigmoid(torch.tensor(-1.75))), abs=1e-6)
    assert float(moved) == pytest.approx(0.2898, abs=1e-4)


def test_the_core_estimators_refuse_it():
    with pytest.raises(ValueError, match=rf"{INDEPENDENT}.*The counterfactual search \(counterfactual_explanation\)"):
        counterfactual_explanation(Centred(), X[:3], 0)
    with pytest.raises(ValueError, match=rf"{INDEPENDENT}.*A counterfactual fairness gap runs rows"):
        counterfactual_fairness_gap(Centred(), X, AttributeFlip(1))


@pytest.mark.parametrize(("audit", "what"), [
    (CounterfactualAudit(max_samples=4), "CounterfactualAudit 'counterfactual'"),
    (FairnessAudit(AttributeFlip(1)), "A counterfactual fairness gap"),  # the core's check, on the probe's rows
    (BackdoorAudit(steps=2), "BackdoorAudit 'backdoor'"),
], ids=["counterfactual", "fairness", "backdoor"])
def test_the_audits_refuse_it_in_their_run_and_their_dry_run(audit, what):
    with pytest.raises(ValueError, match=rf"{INDEPENDENT}.*{what} runs rows"):
        audit.run(Centred(), Probe(X, Y))
    with pytest.raises(ValueError, match=rf"{INDEPENDENT}.*Audit '{audit.name}' runs rows"):
        audit.dry_run(Centred(), Probe(X, Y))  # its 2 samples alone could not show it
    with pytest.raises(ValueError, match=INDEPENDENT):  # before any audit runs in full
        audit_model(Centred(), [audit], DataLoader(TensorDataset(X, Y), batch_size=4), probe_size=4)


def test_a_model_of_independent_rows_still_gets_its_counterfactuals():
    """The same score against a fixed mean: samples 0-2 are class 1 and each needs x0 + x1 past 4 (by hand: l1 of
    3, 2.5 and 1 to the boundary), none is found for free."""
    result = CounterfactualAudit(max_samples=4).run(RowWise(), Probe(X, Y))
    rows = result.tables["counterfactuals"]
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert all(r["success"] for r in rows)
    assert [r["l1"] for r in rows] == pytest.approx([3.0, 2.5, 1.0], abs=0.05)
