"""``BackdoorSuppressionTerm(trigger=None)``'s contrastive detection where the model and its feature-shifted copy rule out
(-inf) every class between them on every sample of ``train_inputs`` (f89c9283's branch, not reached by its tests): with
``contrast=None`` the contrast is skipped with the warning naming them, and the term goes on with the model's own
Neural Cleanse; with ``contrast=True`` (asked for) it is refused, as what else the contrast cannot run on -- it was
skipped with the warning (second_s32a)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import BackdoorSuppressionTerm
from lightning_causal.causal.backdoor.feature_shift import Contrast, feature_shifted
from lightning_causal.causal.engine.state import audit_mode


class _Disjoint(nn.Module):
    """4 classes of 4x4 images: classes 2 and 3 ruled out (-inf) while the output layer holds the weight it was built
    with, classes 0 and 1 once it holds another (the feature-shifted copy re-initialises it): the model and its copy
    share no class on any input."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4))
        self.register_buffer("built", self.net[3].weight.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.net(x)
        kept = [0, 1] if torch.equal(self.net[3].weight, self.built) else [2, 3]
        out = torch.full_like(z, float("-inf"))
        out[:, kept] = z[:, kept]
        return out


def _x() -> torch.Tensor:
    return torch.rand(32, 1, 4, 4, generator=torch.Generator().manual_seed(1)) - 0.5


def test_every_sample_without_a_shared_class_skips_the_contrast_with_the_warning() -> None:
    model, x = _Disjoint(), _x()
    assert sorted(set(model(x).argmax(1).tolist())) == [0, 1]  # the model's own search has two classes to compare
    with audit_mode(model), torch.no_grad():  # the copy the term builds (its seed 0): no class shared on any sample
        shifted = feature_shifted(model, x, 4, generator=torch.Generator().manual_seed(0))
        assert Contrast(model, shifted)(x).isneginf().all().item()
    term = BackdoorSuppressionTerm(None, reverse_options={"steps": 5})  # contrast=None: on for this model
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        term.setup(model, x)
    (said,) = [str(w.message) for w in caught if "feature-shifted copy rule out" in str(w.message)]
    assert "on the samples [0, 1, 2, 3, 4, 5, 6, 7] ... of `train_inputs` (32 of 32" in said
    assert said.endswith("contrastive detection is skipped (`contrast=False` turns it off)")
    assert term.contrast_detection is None and term.detection.ruled_out == [2, 3]  # the model's own search ran


def test_contrast_true_refuses_a_contrast_of_no_class_on_every_sample() -> None:
    term = BackdoorSuppressionTerm(None, reverse_options={"steps": 5}, contrast=True)
    with pytest.raises(ValueError, match=r"BackdoorSuppressionTerm\(contrast=True\): the model and its feature-shifted "
                                         r"copy rule out \(-inf\) every class between them, or all but one, on every one of the 32 "
                                         r"samples of `train_inputs`.*pass `contrast=None`"):
        term.setup(_Disjoint(), _x())  # before: skipped with the warning, though asked for
