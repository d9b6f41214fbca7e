"""Review of the change (git diff d28fdce), newuser28's baselines on token ids.

``attribute`` on token ids took a baseline beyond the vocabulary (the argument, and the ``baselines`` option that
a45b8d3 checks "as the argument is") and an infinite ``baselines`` option (made a whole token id, then an integer of
no meaning) into Captum's passes, where the embedding failed with ``IndexError: index out of range in self``, naming
neither. ``input_layer_attribute`` (12b31c1) and ``layer_attribute`` (a6253d3) checked the vocabulary, each with a copy
of the same check; the three now share ``CaptumForward.token_baseline`` and ``whole_token_ids``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.baselines import attribute


def _model_and_ids() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    return nn.Sequential(nn.Embedding(6, 2), nn.Flatten(), nn.Linear(6, 2)).eval(), torch.tensor([[1, 2, 3], [4, 5, 1]])


def test_a_token_baseline_beyond_the_vocabulary_is_refused_naming_the_argument_or_the_option() -> None:
    model, ids = _model_and_ids()
    with pytest.raises(ValueError, match=r"Expected argument `baselines` to be a token id in \[0, 6\) \(the vocabulary of "
                                         r"Embedding '0', which reads the input\) but got 11"):
        attribute(model, ids, "FeatureAblation", 0, baselines=11)
    with pytest.raises(ValueError, match=r"Expected option `baselines` of method `FeatureAblation` to be a token id in \[0, 6\)"):
        attribute(model, ids, ("FeatureAblation", {"baselines": torch.tensor(11.0)}), 0)
    with pytest.raises(ValueError, match=r"Expected option `baselines` of method `ShapleyValueSampling` to be a token id .* got -1"):
        attribute(model, ids, ("ShapleyValueSampling", {"baselines": -1}), 0)


@pytest.mark.parametrize("value", [float("inf"), torch.tensor(float("-inf"))])
def test_an_infinite_baselines_option_on_token_ids_is_refused_as_not_finite(value: object) -> None:
    model, ids = _model_and_ids()
    with pytest.raises(ValueError, match=r"Expected option `baselines` of method `FeatureAblation` to be finite but got"):
        attribute(model, ids, ("FeatureAblation", {"baselines": value}), 0)


def test_a_token_baseline_in_the_vocabulary_gives_the_ablations_by_hand() -> None:
    model, ids = _model_and_ids()
    with torch.no_grad():
        brute = torch.stack([model(ids)[:, 0] - model(ids.index_fill(1, torch.tensor([g]), 5))[:, 0] for g in range(3)], 1)
    for given in ({"baselines": 5}, {"options": {"baselines": 5.0}}):
        ours = attribute(model, ids, "FeatureAblation", 0, **given)
        torch.testing.assert_close(ours, brute, rtol=1e-6, atol=1e-7)
