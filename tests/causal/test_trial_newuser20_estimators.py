"""Validation sweep (newuser20): the core estimators fed a user's usual mistakes.

graph_faithfulness of a graph built on a wider model failed inside an index ('index 6 is out of
bounds for dimension 0 with size 6'); unit_effects(intervention=Zero), the class for an
instance, failed with "'type' object is not iterable"; counterfactual_explanation(bounds=(nan,
1.0)) ran (NaN compares false: no bound checked)."""

import pytest
import torch
from torch import nn

from lightning_causal import Zero, causal_graph, counterfactual_explanation, unit_effects
from lightning_causal.causal import graph_faithfulness


def _mlp(hidden: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 3)).eval()


X = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))


def test_a_graph_of_another_model_is_refused_naming_the_units():
    graph = causal_graph(_mlp(16), X, ["1"], top_k=16, alpha=1.0, min_share=0.0)
    wide = [n for n in graph.nodes if n.startswith("1:") and int(n[2:]) >= 8]
    assert wide  # the graph holds units beyond the smaller model's 8
    with pytest.raises(ValueError, match=r"`graph` to hold units 0 to 7 of layer '1' \(8 units in this model\) but got \['1:"):
        graph_faithfulness(_mlp(8), X, graph)
    assert 0.0 < graph_faithfulness(_mlp(16), X, graph)["faithfulness"] <= 1.0 + 1e-6  # its own model takes it


@pytest.mark.parametrize("call, error, message", [
    (lambda: unit_effects(_mlp(8), X, "1", intervention=Zero), TypeError, r"`intervention` .* but got the class Zero: pass an instance"),
    (lambda: unit_effects(_mlp(8), X, "1", intervention=3.0), TypeError, r"`intervention` to be an Intervention .* but got 3.0"),
    (lambda: counterfactual_explanation(_mlp(8), X, 1, bounds=(float("nan"), 1.0)), ValueError,
     r"`bounds` to hold no NaN \(use -inf/inf for no bound\) but its low holds 1 NaN"),
])
def test_wrong_input_is_refused_naming_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_a_graph_of_one_sample_says_it_has_no_unit_nodes():
    """causal_graph of a probe of one sample returned a graph of its output node alone, silently (the
    warning for one sample per class left the one-sample probe out)."""
    with pytest.warns(UserWarning, match=r"Each of the 1 explained classes has one sample of the probe of 1: a graph of one sample.*paired t-test"):
        graph = causal_graph(_mlp(8), X[:1], ["0", "2"])
    assert [n for n in graph.nodes if not n.startswith("output")] == []


@pytest.mark.parametrize("value", ["no", "False", 0, None])
def test_use_suffix_takes_a_bool(value):
    """unit_effects(use_suffix="no") ran the suffix passes ("no" is truthy) without a word."""
    with pytest.raises(TypeError, match=rf"`use_suffix` to be a bool but got {value!r}"):
        unit_effects(_mlp(8), X, "1", use_suffix=value)
    # the suffix's rows answer model[2] by the linear update (the probe output plus one column's change): float32 rounding
    torch.testing.assert_close(unit_effects(_mlp(8), X, "1", use_suffix=False), unit_effects(_mlp(8), X, "1", use_suffix=True),
                               rtol=0, atol=1e-6)
