"""Review of 6c99d91f (review_s34d): SobolAudit's softmax over independent scores.

6c99d91f warned where CaptumBaseline's curves take a softmax over outputs that are independent probabilities (every
entry of 8 probe rows or more in [0, 1], rows not summing to 1: a multi-label head's sigmoids, a detector's best score
per class), but SobolAudit, whose default `probability=True` takes the same softmax, read the outputs of the probe's
first row alone, which tells nothing: the softmax of each class's best detection score was explained without a word.
It reads up to 64 probe rows now (since leftovers_s35b the first 64 rows the analysis ran, a probe of 7 samples told too).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from lightning_causal import SobolAudit
from lightning_causal.audits import Probe


class _Best(nn.Module):  # each class's best score of a decoder: sigmoids, 0 where below the threshold
    def __init__(self, threshold: float):
        super().__init__()
        self.head, self.threshold = nn.Linear(6, 3), threshold

    def forward(self, x):
        p = self.head(x).sigmoid()
        return torch.where(p > self.threshold, p, torch.zeros_like(p))


def _said(model, x, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        SobolAudit(n=64, n_bootstrap=0, target=1, patch_size=None, **kwargs).run(model, Probe(x))
    return [str(w.message) for w in caught if "softmax over the model's outputs" in str(w.message)]


def test_sobol_warns_of_a_softmax_over_independent_scores_and_not_over_logits():
    torch.manual_seed(0)
    x, model = torch.randn(16, 6), _Best(0.4).eval()
    said = _said(model, x)
    assert len(said) == 1 and "lies in [0, 1] and their rows do not sum to 1" in said[0] and "`probability=False`" in said[0]
    assert not _said(model, x, probability=False)
    assert not _said(model.head, x)  # logits
    assert len(_said(model, x[:7])) == 1  # 7 probe samples: the analysis' first 64 rows tell it (leftovers_s35b)


def test_the_advised_logit_of_one_class_keeps_the_curves_finite_where_a_score_is_0():
    """The warning's way to explain one class's own probability, `out[:, [k]].logit()`, gave -inf for every image
    without a detection of class k (a score of 0), and the curves' AUCs were -inf; it names `logit(eps=1e-6)` now."""
    import re

    from lightning_causal import CaptumBaseline

    torch.manual_seed(0)
    x, model = torch.randn(16, 6), _Best(0.5).eval()
    assert (model(x)[:, 1] == 0).any()  # images without a detection of class 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        CaptumBaseline(("Saliency",), target=1).run(model, Probe(x))
    said = next(str(w.message) for w in caught if "softmax over the model's outputs" in str(w.message))
    way = re.search(r"`output=(lambda out: out\[:, \[k\]\]\.(?:float\(\)\.)?logit.*?)`", said).group(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = CaptumBaseline(("Saliency",), target=0, output=eval(way.replace("[k]", "[1]"))).run(model, Probe(x))  # noqa: S307
    assert torch.isfinite(torch.tensor([result.scalars["deletion_auc"], result.scalars["insertion_auc"]])).all()
    # the advice taken on a half-precision head: a saturated score of 1 and a missed detection of 0 stay finite
    half = torch.tensor([[0.0, 1.0, 0.9999], [1.0, 0.0, 0.5]], dtype=torch.float16)
    assert torch.isfinite(eval(way.replace("[k]", "[1]"))(half)).all()  # noqa: S307
