"""Trial newuser125 (neural fields): an auto-decoder's validation rows are the coordinates of image 0, then image 1,
...; the callback's probe, the first 256 rows, holds image 0 only. Explained on its image ids with the baseline 0 (image
0's code), every row already equals the baseline: the warning said to pass another baseline, which would explain
image 0 alone against that image. Where every sample holds one value, it now names that cause and the way out (a
random set of rows); a probe whose rows differ but all equal the baseline keeps the words it had."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from lightning_causal.causal import input_effects


class _Coded(nn.Module):
    def __init__(self):
        super().__init__()
        self.codes = nn.Embedding(4, 3)
        self.head = nn.Linear(3, 1)

    def forward(self, ids):
        return self.head(self.codes(ids))


def _warning(x, baseline) -> str:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        effects = input_effects(_Coded().eval(), x, baseline=baseline)
    assert torch.equal(effects, torch.zeros_like(effects, dtype=effects.dtype))
    texts = [str(w.message) for w in caught if "already equals `baseline`" in str(w.message)]
    assert len(texts) == 1
    return texts[0]


def test_samples_of_one_value_are_named_with_the_random_rows_way_out():
    text = _warning(torch.zeros(16, dtype=torch.long), 0)  # 16 rows of image 0
    assert "the 16 samples hold one value" in text and "random set of rows" in text


def test_one_sample_keeps_the_words_it_had():
    assert "random set of rows" not in _warning(torch.zeros(1, dtype=torch.long), 0)


def test_rows_that_differ_keep_the_words_they_had():
    x = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        input_effects(nn.Linear(2, 1).eval(), x, torch.tensor([[0, 0]]), baseline=x)  # each row its own baseline
    texts = [str(w.message) for w in caught if "already equals `baseline`" in str(w.message)]
    assert len(texts) == 1 and "random set of rows" not in texts[0]
