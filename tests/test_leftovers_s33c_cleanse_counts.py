"""``BackdoorSuppressionTerm``'s contrastive search leaves out of ``train_inputs`` the samples where the model and its
feature-shifted copy leave no two classes to compare, then ran Neural Cleanse on the rest: its words counted that
shortened set as the inputs ("every one of the 29 inputs is already predicted as class 0"), a number the user never
passed. ``neural_cleanse(given=)`` now counts both: the inputs searched and how many of those given were left out."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal.backdoor.neural_cleanse import neural_cleanse


def _one_class_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    with torch.no_grad():
        model[1].bias.copy_(torch.tensor([100.0, 0.0, 0.0]))  # every input predicted as class 0
    return model


def _notes(**options) -> list[str]:
    x = torch.rand(8, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        neural_cleanse(_one_class_model(), x, 3, steps=3, **options)
    return [str(w.message) for w in caught if "already predicted as class 0" in str(w.message)]


def test_the_note_counts_what_was_given_and_left_out() -> None:
    (note,) = _notes(given=20)
    assert note.startswith("every one of the 8 inputs searched (of the 20 given, 12 left out) is already predicted as class 0")
    (plain,) = _notes()
    assert plain.startswith("every one of the 8 inputs is already predicted as class 0")


def test_given_below_the_inputs_is_refused() -> None:
    with pytest.raises(ValueError, match="given"):
        _notes(given=3)
