"""check_class_labels' ordinal hint (c295f04c), on a 3-class classifier ending in nn.Softmax whose probe labels hold a
class 3, read the probabilities as an ordinal head's cumulative P(rank > k) and advised `output=lambda out: out.sum(1,
keepdim=True)`: 1 for every input, so following it gave effects of ~1e-7 and no warning (final_read_F F4,
/tmp/final_read_F/i_softmax_hint.py). Rows summing to one or of log-probabilities are one decision's classes:
no ranks' hint there, as resolve_target already did (one function, checks.ranks_hint, serves both)."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.checks import check_class_labels

LABELS = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])


def _outputs(last: nn.Module) -> torch.Tensor:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 3), last).eval()
    with torch.no_grad():
        return model(torch.randn(8, 5, generator=torch.Generator().manual_seed(1)))


@pytest.mark.parametrize("last", [nn.Softmax(1), nn.LogSoftmax(1)], ids=["softmax", "log_softmax"])
def test_a_one_decision_classifier_gets_no_ranks_hint(last):
    with pytest.raises(ValueError, match=r"got \[3\] among them \(e\.g\. labels numbered from 1\)$"):
        check_class_labels("probe.labels", LABELS, 3, outputs=_outputs(last))


def test_the_advice_it_gave_was_a_constant_output():
    """Why: the sum of a Softmax classifier's rows, the hint's expected rank, does not depend on the input."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 3), nn.Softmax(1)).eval()
    x = torch.randn(8, 5, generator=torch.Generator().manual_seed(1))
    assert float(input_effects(model, x, output=lambda out: out.sum(1, keepdim=True)).abs().max()) < 1e-6


def test_sigmoid_and_logit_ranks_keep_their_hints():
    sig = _outputs(nn.Sigmoid())
    with pytest.raises(ValueError, match=r"cumulative probabilities P\(rank > k\).*`output=lambda out: out\.sum\(1"):
        check_class_labels("probe.labels", LABELS, 3, outputs=sig)
    with pytest.raises(ValueError, match=r"cumulative logits \(CORAL.*torch\.sigmoid\(out\)\.sum\(1"):
        check_class_labels("probe.labels", LABELS, 3, outputs=_outputs(nn.Identity()))
