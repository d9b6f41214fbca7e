"""The Captum comparison's string options are Literal types whose values are the checked ones
(``perturbation_curve(mode=, score=)``, ``token_stability(pool=)``, ``CompareSettings(score=, token_pool=,
layer_method=)``, ``layer_attribute(method=, reduction=)``, ``aggregate_to_groups(reduction=)``;
before, ``str``: a type checker let ``score="probability"`` through), and ``CompareSettings(special_tokens=)``
takes any sequence of ids, as ``__post_init__`` does (a list was a type error; it is stored as a tuple)."""

from __future__ import annotations

import typing

import pytest
import torch
from torch import nn

from lightning_causal.audits import CompareSettings
from lightning_causal.baselines import (
    LAYER_METHOD_NAMES,
    aggregate_to_groups,
    layer_attribute,
    perturbation_curve,
    token_stability,
)
from lightning_causal.baselines.method_specs import LayerMethod
from lightning_causal.baselines.metrics import CurveMode, CurveScore, TokenPool

MODEL = nn.Linear(2, 1, bias=False)
with torch.no_grad():
    MODEL.weight.fill_(1.0)
X, MASK, SCORES = torch.tensor([[1.0, 2.0]]), torch.tensor([[0, 1]]), torch.tensor([[0.0, 1.0]])


def test_hints_are_the_literals_with_the_checked_values():
    assert typing.get_args(CurveMode) == ("deletion", "insertion")
    assert typing.get_args(CurveScore) == ("auto", "softmax", "raw")
    assert typing.get_args(TokenPool) == ("probe", "position")
    hints = typing.get_type_hints(perturbation_curve)
    assert (hints["mode"], hints["score"]) == (CurveMode, CurveScore)
    assert typing.get_type_hints(token_stability)["pool"] == TokenPool
    settings = typing.get_type_hints(CompareSettings)
    assert (settings["score"], settings["token_pool"]) == (CurveScore, TokenPool)


def test_every_curve_value_runs_and_others_raise_naming_the_parameter():
    # deletion of the higher-scored feature first: 3 -> 1 -> 0 (the docstring's hand values)
    two = nn.Linear(2, 2)  # score="softmax" needs several outputs
    for mode in typing.get_args(CurveMode):
        for score in typing.get_args(CurveScore):
            _, curve = perturbation_curve(two, X, MASK, SCORES, mode=mode, score=score, target=0)
            assert curve.shape == (1, 3)
    torch.testing.assert_close(perturbation_curve(MODEL, X, MASK, SCORES, score="raw")[1], torch.tensor([[3.0, 1.0, 0.0]]))
    with pytest.raises(ValueError, match=r"`mode` to be 'deletion' or 'insertion' but got 'removal'"):
        perturbation_curve(MODEL, X, MASK, SCORES, mode="removal")
    with pytest.raises(ValueError, match=r"`score` to be one of \['auto', 'softmax', 'raw'\] but got 'probability'"):
        perturbation_curve(MODEL, X, MASK, SCORES, score="probability")


def test_compare_settings_take_the_literals_and_a_list_of_special_tokens():
    for score in typing.get_args(CurveScore):
        for pool in typing.get_args(TokenPool):
            CompareSettings(score=score, token_pool=pool)
    assert CompareSettings(special_tokens=[101, 102]).special_tokens == (101, 102)
    with pytest.raises(ValueError, match=r"`token_pool` to be one of \['probe', 'position'\] but got 'vocabulary'"):
        CompareSettings(token_pool="vocabulary")
    with pytest.raises(ValueError, match=r"`score` to be one of .* but got 'probability'"):
        CompareSettings(score="probability")


def test_layer_methods_and_reductions_are_literals_of_the_accepted_names():
    assert set(typing.get_args(LayerMethod)) == set(LAYER_METHOD_NAMES) and len(typing.get_args(LayerMethod)) == 4
    hints = typing.get_type_hints(layer_attribute)
    assert hints["method"] == LayerMethod and hints["reduction"] == (typing.Literal["sum", "mean"] | None)
    assert typing.get_type_hints(CompareSettings)["layer_method"] == LayerMethod
    assert set(typing.get_args(typing.get_type_hints(aggregate_to_groups)["reduction"])) == {"sum", "mean"}
    a, mask = torch.tensor([[1.0, 3.0, 5.0]]), torch.tensor([0, 0, 1])
    torch.testing.assert_close(aggregate_to_groups(a, mask, "sum"), torch.tensor([[4.0, 5.0]]))
    torch.testing.assert_close(aggregate_to_groups(a, mask, "mean"), torch.tensor([[2.0, 5.0]]))
    with pytest.raises(ValueError, match=r"`reduction` to be 'sum' or 'mean' but got 'max'"):
        aggregate_to_groups(a, mask, "max")
    with pytest.raises(ValueError, match=r"`layer_method` to be one of .* but got 'LayerGradCam'"):
        CompareSettings(layer_method="LayerGradCam")
