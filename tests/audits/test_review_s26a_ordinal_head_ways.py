"""The warning of an ordinal head chosen by key or index (5c31bea) named the ways out of a model returning the head
alone, ``output=lambda out: torch.sigmoid(out).sum(1, keepdim=True)`` and, for a one-vs-rest classifier,
``output=lambda out: out``: a callable ``output=`` takes the model's whole output, so on a model of two heads each
failed ('to select a tensor from dict with keys ['cls', 'ordinal'] but got dict'; ``torch.sigmoid`` of a dict). The
warning now says that the lambdas take the whole output and names the head in it (``out['ordinal']``, ``out[1]``),
and that way works and is not warned of."""

from __future__ import annotations

import re
import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import CounterfactualAudit, FairnessAudit, InputEffectAudit, Probe
from lightning_causal.causal import AttributeFlip

THRESHOLDS = torch.tensor([-1.5, -0.5, 0.5, 1.5])


class _TwoHeads(nn.Module):
    """A class head and a CORAL head (cumulative logits of the score 1.5 x0 + 0.7 x1), as a dict or a tuple."""

    def __init__(self, as_tuple: bool = False) -> None:
        super().__init__()
        self.as_tuple = as_tuple
        self.score = nn.Linear(5, 1, bias=False)
        self.cls = nn.Linear(5, 2, bias=False)
        with torch.no_grad():
            self.score.weight.copy_(torch.tensor([[1.5, 0.7, 0.0, 0.0, 0.0]]))
            self.cls.weight.copy_(torch.tensor([[-1.0, 0, 0, 0, 0], [1.0, 0, 0, 0, 0]]))
        self.hparams = {"task": {1: "multilabel"} if as_tuple else {"cls": "multiclass", "ordinal": "multilabel"}}

    def forward(self, x):
        cls, ordinal = self.cls(x), self.score(x) - THRESHOLDS
        return (cls, ordinal) if self.as_tuple else {"cls": cls, "ordinal": ordinal}


def _probe() -> Probe:
    x = torch.randn(32, 5, generator=torch.Generator().manual_seed(0))
    x[:, 4] = (x[:, 4] > 0).float()
    return Probe(x, torch.bucketize(1.5 * x[:, 0] + 0.7 * x[:, 1], THRESHOLDS).clamp(max=3))


@pytest.mark.parametrize(("as_tuple", "output", "head", "expected_rank"), [
    (False, "ordinal", "out['ordinal']", lambda out: torch.sigmoid(out["ordinal"]).sum(1, keepdim=True)),
    (True, 1, "out[1]", lambda out: torch.sigmoid(out[1]).sum(1, keepdim=True)),
])
def test_the_warning_names_the_head_in_the_lambdas_and_that_way_works(as_tuple, output, head, expected_rank):
    model, probe = _TwoHeads(as_tuple).eval(), _probe()
    said = re.escape(f"the `output=` lambdas named below take the model's whole output, in which the head is `{head}`")
    with pytest.warns(UserWarning, match=said):
        CounterfactualAudit(output=output).validate(model, probe)
    with pytest.warns(UserWarning, match=said):
        FairnessAudit(AttributeFlip(4), output=output).validate(model, probe)
    # the expected rank as the warning names it, the head read as it says: runs, and says nothing of ranks
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result = InputEffectAudit(ace_values=None, output=expected_rank).run(model, Probe(probe.inputs))
    assert not [w for w in seen if "rank" in str(w.message)]
    effects = result.vectors["mean_abs_effect"]  # of the score 1.5 x0 + 0.7 x1: x0's the largest, x2..x4 none
    # (none up to float32 rounding: the intervened pass's matrix product rounds otherwise than the factual pass's on
    # CPUs whose kernels depend on the rows in a pass, 7e-9 on an AVX-512 Xeon)
    assert effects.shape == (5,) and effects[2:].abs().max() <= 1e-6 * effects[0] and effects[0] > effects[1] > 0


@pytest.mark.parametrize(("head", "attribute"), [
    ("class", "getattr(out, 'class')"), ("lambda", "getattr(out, 'lambda')"), ("ordinal", "out.ordinal"),
    ("level-2", "getattr(out, 'level-2')"),
])
def test_a_head_named_with_a_keyword_is_read_by_getattr_in_the_warning(head, attribute):
    # late_s27a: a head named `class` was shown as `out.class`, a syntax error in the lambda the user writes
    from lightning_causal.audits.label_task import level_outputs, task_model

    class Heads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hparams = {"task": {head: "multilabel"}}

    said = level_outputs(torch.tensor([0, 3, 2]), torch.zeros(3, 4), task_model(Heads(), head), head)
    assert said is not None and f"`{attribute}` where it is an object read by attribute" in said
    shown = compile(f"lambda out: {attribute}", "<warning>", "eval")  # the named attribute read is valid Python
    assert eval(shown)(type("Out", (), {head: 7})) == 7  # noqa: S307 - reads the head of an object by that name
