"""An ordinal head chosen by key or index (``output="ordinal"`` of ``{"cls": logits, "ordinal": cumulative logits}``)
was never warned of: ``level_outputs`` returned at any ``output=``, so a model that declares the head multi-label
(``hparams["task"] = {"ordinal": "multilabel"}``, what ``task_model`` reads per head) and whose probe's labels are
ranks was explained by the argmax and softmax of its cumulative logits silently, while the same head returned alone
was warned of. A key or an index selects a head, whose declared task now decides; a callable ``output=`` is still
taken as given (the one-vs-rest way out), and a head the model declares nothing of says nothing."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import CounterfactualAudit, FairnessAudit, InputEffectAudit, Probe
from lightning_causal.audits.label_task import level_outputs, task_model
from lightning_causal.causal import AttributeFlip

THRESHOLDS = torch.tensor([-1.5, -0.5, 0.5, 1.5])


class TwoHeads(nn.Module):
    """A class head (2 classes of the sign of x0) and a CORAL head (cumulative logits of the score 1.5 x0 + 0.7 x1)."""

    def __init__(self, declared: bool = True) -> None:
        super().__init__()
        self.score = nn.Linear(5, 1, bias=False)
        self.cls = nn.Linear(5, 2, bias=False)
        with torch.no_grad():
            self.score.weight.copy_(torch.tensor([[1.5, 0.7, 0.0, 0.0, 0.0]]))
            self.cls.weight.copy_(torch.tensor([[-1.0, 0, 0, 0, 0], [1.0, 0, 0, 0, 0]]))
        if declared:
            self.hparams = {"task": {"cls": "multiclass", "ordinal": "multilabel"}}

    def forward(self, x):
        return {"cls": self.cls(x), "ordinal": self.score(x) - THRESHOLDS}


def _probe() -> Probe:
    x = torch.randn(32, 5, generator=torch.Generator().manual_seed(0))
    x[:, 4] = (x[:, 4] > 0).float()
    return Probe(x, torch.bucketize(1.5 * x[:, 0] + 0.7 * x[:, 1], THRESHOLDS).clamp(max=3))


def test_level_outputs_reads_the_declared_task_of_the_head_a_key_selects():
    model, ranks, out = TwoHeads(), torch.tensor([0, 3, 2]), torch.zeros(3, 4)
    said = level_outputs(ranks, out, task_model(model, "ordinal"), "ordinal")
    assert said is not None and "head `output='ordinal'`" in said
    assert level_outputs(ranks, out, task_model(model, "cls"), "cls") is None  # a multiclass head
    assert level_outputs(ranks, out, task_model(TwoHeads(declared=False), "ordinal"), "ordinal") is None  # says nothing
    assert level_outputs(ranks, out, model, lambda o: o["ordinal"]) is None  # a callable: taken as given


def test_the_audits_warn_of_an_ordinal_head_chosen_by_key():
    model, probe = TwoHeads().eval(), _probe()
    with pytest.warns(UserWarning, match=r"(?s)CounterfactualAudit.*head `output='ordinal'`.*cumulative logits"):
        CounterfactualAudit(output="ordinal").validate(model, probe)
    with pytest.warns(UserWarning, match=r"(?s)FairnessAudit.*no probability of a rank"):
        FairnessAudit(AttributeFlip(4), output="ordinal").validate(model, probe)
    with pytest.warns(UserWarning, match="no rank"):
        InputEffectAudit(ace_values=None, output="ordinal").run(model, probe)


def test_the_class_head_and_a_callable_output_say_nothing_of_ranks():
    model, probe = TwoHeads().eval(), _probe()
    cls_probe = Probe(probe.inputs, (probe.inputs[:, 0] > 0).long())
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        CounterfactualAudit(output="cls").validate(model, cls_probe)
        CounterfactualAudit(output=lambda out: out["ordinal"]).validate(model, probe)
    assert not [w for w in seen if "rank" in str(w.message)]
