"""Review of 6c99d91f (review_s34d): probabilities in half precision.

``independent_probabilities`` (6c99d91f) leaves rows that sum to 1 within their dtype's rounding to ``check_logits``'s
refusal of probabilities, but ``check_logits`` read them to 1e-4 in float32: the rows of a float16 softmax over 10
classes sum to 1 +- 3e-4, a bfloat16 one's to 1 +- 3e-3, so neither spoke and CaptumBaseline's curves took the softmax
of probabilities (0.9 beside 0.1 flattened to 0.69) without a word. Both read one rule now (``state.rows_sum_to_one``).
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import CaptumBaseline
from lightning_causal.audits import Probe
from lightning_causal.causal.engine.state import check_logits


class _Softmax(nn.Module):
    def __init__(self, dtype: torch.dtype):
        super().__init__()
        self.head, self.dtype = nn.Linear(8, 10), dtype

    def forward(self, x):
        return (3 * self.head(x)).to(self.dtype).softmax(1)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_probabilities_are_refused_by_the_curves(dtype):
    torch.manual_seed(0)
    model, x = _Softmax(dtype).eval(), torch.randn(16, 8)
    with torch.no_grad():
        sums = model(x).double().sum(1)
    assert (sums - 1).abs().max() > 1e-4  # beyond the old tolerance: the case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="it returns probabilities already"):
            CaptumBaseline(("Saliency",), target=0).run(model, Probe(x))


def test_half_precision_logits_pass():
    torch.manual_seed(0)
    logits = (3 * torch.randn(16, 10)).half()
    assert check_logits(logits, "it") is logits
    # non-negative half logits that sum to 1 only roughly (a row off by 1%) are no probabilities
    rough = torch.full((4, 10), 0.101).half()
    assert check_logits(rough, "it") is rough
