"""``BackdoorSuppressionTerm(trigger=None)`` on an image model whose logits pass a top-1 gate (every class but the
largest ruled out with -inf): the model and its feature-shifted copy leave at most one class between them on every
sample (none where they disagree, one where they agree, its contrast 0), so the contrastive trigger search had no
other class to move a sample to and was moved by its mask penalty alone, over every class, for nothing. Samples of at
most one class are now left out of the contrast as those of none were, so a top-1 gate skips it, saying why in words
(``contrast=True`` refuses it, as it refuses what else it cannot run on)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import BackdoorSuppressionTerm


class _Top1(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.net(x)
        return z.masked_fill(z < z.amax(1, keepdim=True), float("-inf"))


def _x() -> torch.Tensor:
    return torch.rand(32, 1, 4, 4, generator=torch.Generator().manual_seed(1)) - 0.5


def test_a_top_1_gate_skips_the_contrast_in_words() -> None:
    term = BackdoorSuppressionTerm(None, reverse_options={"steps": 5})  # contrast=None: on for this model
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        term.setup(_Top1(), _x())
    (said,) = [str(w.message) for w in caught if "feature-shifted copy rule out" in str(w.message)]
    assert "or all but one, on the samples [0, 1, 2, 3, 4, 5, 6, 7] ... of `train_inputs` (32 of 32: a top-1 gate" in said
    assert "moved by its mask penalty alone" in said and said.endswith("contrastive detection is skipped (`contrast=False` turns it off)")
    assert term.contrast_detection is None and term.detection is not None  # the model's own search ran


def test_contrast_true_refuses_a_top_1_gate() -> None:
    term = BackdoorSuppressionTerm(None, reverse_options={"steps": 5}, contrast=True)
    with pytest.raises(ValueError, match=r"or all but one, on every one of the 32 samples .*a top-1 gate.*mask penalty alone"):
        term.setup(_Top1(), _x())
