"""``counterfactual_fairness_gap`` returns a ``FairnessGap`` TypedDict: type checkers know each key's type
(before: ``dict[str, float | Tensor]``, so ``{"gap": g["mean_abs"]}`` typed as ``dict[str, float]`` was an
error in examples/adult_fairness.py, FairnessAudit and text_transformer.py, and a misspelt key such as
``g["cf_gap"]`` passed). At run time it is the same dict: exactly the TypedDict's keys, each of its type."""

from __future__ import annotations

import typing

import torch
from torch import Tensor, nn

from lightning_causal.causal import AttributeFlip, counterfactual_fairness_gap
from lightning_causal.causal.scm.fairness import FairnessGap


def test_the_gap_is_a_dict_of_exactly_the_typed_keys_and_types():
    assert typing.get_type_hints(counterfactual_fairness_gap)["return"] is FairnessGap
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0]]))
    x = torch.tensor([[0.0, 3.0], [1.0, 3.0]])
    gap = counterfactual_fairness_gap(model, x, AttributeFlip(0), target=1)
    hints = typing.get_type_hints(FairnessGap)
    assert type(gap) is dict and set(gap) == set(hints) == {"mean_abs", "max_abs", "mean", "flip_rate", "changed", "delta", "compared"}
    assert all(isinstance(gap[k], t) for k, t in hints.items())
    assert isinstance(gap["delta"], Tensor) and hints["delta"] is Tensor
    # logits (0, x0): p_1 = sigmoid(x0); flipping x0 between 0 and 1 moves it by 0.7311 - 0.5 = 0.2311 and flips the class
    assert round(gap["mean_abs"], 4) == 0.2311 and gap["flip_rate"] == 1.0 and gap["changed"] == 1.0
