"""``BackdoorSuppressionTerm(trigger=None)`` on an image model with a top-k gate on its logits (every class but the k
largest ruled out with -inf) and an ``nn.Linear`` head: its contrastive detection, on by default there (``contrast=None``),
stopped the term's set-up with Neural Cleanse's refusal ('At samples [...] every output is -infinity ... leave those
samples out of `x`'), wherever the model and its feature-shifted copy kept disjoint top-k sets on a sample of
``train_inputs`` -- samples the user never passed as ``x`` (review_s32a; left by leftovers_s32b, 95d23d30). Those
samples, which have no contrast in any class, are now left out of the contrast's search with a warning naming them
(the contrast is skipped where every sample is such)."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from lightning_causal import BackdoorSuppressionTerm
from lightning_causal.causal.backdoor.feature_shift import Contrast, feature_shifted
from lightning_causal.causal.engine.state import audit_mode


class _TopK(nn.Module):
    """A 4-class model of 4x4 images; every class but the ``k`` of largest logits ruled out with -inf."""

    def __init__(self, k: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net, self.k = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4)), k
        with torch.no_grad():
            self.net[1].weight.mul_(4), self.net[3].weight.mul_(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.net(x)
        return z.masked_fill(z < z.topk(self.k, 1).values[:, -1:], float("-inf"))


def _setup(k: int) -> tuple[BackdoorSuppressionTerm, list[str], list[int]]:
    model, x = _TopK(k), torch.rand(64, 1, 4, 4, generator=torch.Generator().manual_seed(1)) - 0.5
    term = BackdoorSuppressionTerm(None, reverse_options={"steps": 5})  # contrast=None: on for this model
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        term.setup(model, x)  # before: ValueError 'At samples [...] every output is -infinity'
    with audit_mode(model), torch.no_grad():  # the same copy (seed 0), its contrast by hand
        shifted = feature_shifted(model, x, 4, generator=torch.Generator().manual_seed(term.seed))
        none = (Contrast(model, shifted)(x).isfinite().sum(1) <= 1).nonzero().flatten().tolist()  # one class at most
    said = [str(w.message) for w in caught if "feature-shifted copy rule out" in str(w.message)]
    return term, said, none


def test_samples_without_a_shared_class_are_left_out_of_the_contrast_and_named() -> None:
    term, said, none = _setup(2)
    assert 8 < len(none) < 64  # samples of disjoint top-2 sets, or of one class shared (leftovers_s33c)
    (message,) = said
    assert f"on the samples {none[:8]} ... of `train_inputs` ({len(none)} of 64" in message
    assert f"contrastive detection runs on the other {64 - len(none)}" in message
    assert term.contrast_detection is not None  # the contrast was searched on the rest


def test_a_top_1_gate_names_its_first_8_samples_and_skips_the_contrast() -> None:
    term, said, none = _setup(1)  # top-1: no class where the copy predicts another, one where it agrees (leftovers_s33c)
    assert len(none) == 64 and term.contrast_detection is None
    assert f"on the samples {none[:8]} ... of `train_inputs` (64 of 64" in said[0] and "is skipped" in said[0]
