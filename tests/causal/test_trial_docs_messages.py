"""Error messages read as sentences whatever the caller named in them (a plural such as "the
counterfactual fairness measures" made "the counterfactual fairness measures applies a softmax")."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import AttributeFlip, counterfactual_fairness_gap


def test_probability_refusal_names_the_caller_grammatically():
    model = nn.Sequential(nn.Linear(3, 2), nn.Softmax(-1)).eval()
    x = torch.randn(8, 3)
    x[:, 0] = (x[:, 0] > 0).float()
    with pytest.raises(ValueError) as info:
        counterfactual_fairness_gap(model, x, AttributeFlip(0))
    message = str(info.value)
    assert "measures applies" not in message
    assert "a softmax is applied to its output by the counterfactual fairness measures, which expects logits" in message
    assert "`output=lambda out: out.log()`" in message


def test_ace_on_token_ids_says_what_to_use_instead():
    """docs/your_model.md: gradient attributions and the ACE curve are refused for token ids "with a
    message": the gradient methods' message names the alternative, the ACE's only named the dtype."""
    from lightning_causal.causal import average_causal_effect

    model = nn.Sequential(nn.Embedding(12, 4), nn.Flatten(), nn.Linear(12, 2)).eval()
    ids = torch.randint(0, 12, (5, 3))
    with pytest.raises(TypeError, match=r"dtype torch.int64; token ids .*`input_effects\(model, ids, baseline=<\[MASK\] id>\)`.*input_layer="):
        average_causal_effect(model, ids)
