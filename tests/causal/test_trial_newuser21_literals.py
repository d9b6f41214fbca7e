"""The core's hints that type checkers read match what the functions do at run time.

- ``unit_effects`` is overloaded on ``return_info``: ``Literal[True]`` gives ``(Tensor, UnitEffectsInfo)``,
  ``Literal[False]`` (the default) a ``Tensor`` (before, every call was typed ``Tensor | tuple[...]`` and
  a user had to cast). At run time the result is a tuple exactly when ``return_info`` is ``True``, and a
  value that is no ``bool`` (``1``, ``None``), which no overload can type, is refused naming ``return_info``
  (``return_info=1`` returned the tuple before).
- The string options are ``Literal`` types whose values are exactly the ones the code accepts (the
  check tuples are made from them), and a value outside raises naming the parameter.
"""

from __future__ import annotations

import typing

import pytest
import torch
from torch import nn

from lightning_causal.causal import AdditiveNoiseSCM, causal_graph, input_effects, unit_effects
from lightning_causal.causal.effects.input_effects import INPUT_METHODS, InputMethod
from lightning_causal.causal.effects.unit_effects import METHODS, UnitEffectsInfo, UnitMethod
from lightning_causal.causal.scm.scm import NoiseKind
from lightning_causal.causal.structure.significance import (
    ALTERNATIVES,
    CORRECTIONS,
    Alternative,
    Correction,
    adjust_p_values,
    p_values,
    shares,
    z_critical,
)


def _model() -> nn.Sequential:
    """f(x) = 3 relu(x0) - relu(x1): zeroing hidden unit 0 removes 3, unit 1 removes -2 at x = (1, 2)."""
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(2))
        model[0].bias.zero_()
        model[2].weight.copy_(torch.tensor([[3.0, -1.0]]))
        model[2].bias.zero_()
    return model


X = torch.tensor([[1.0, 2.0]])


@pytest.mark.parametrize("method", typing.get_args(UnitMethod))
def test_unit_effects_returns_a_tuple_exactly_when_return_info_is_true(method):
    plain = unit_effects(_model(), X, "1", method=method)
    assert isinstance(plain, torch.Tensor)
    assert isinstance(unit_effects(_model(), X, "1", method=method, return_info=False), torch.Tensor)
    pair = unit_effects(_model(), X, "1", method=method, return_info=True)
    assert isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[1], UnitEffectsInfo)
    # every method named by the Literal runs, and on this piecewise-linear model all are exact: 3 and -2
    torch.testing.assert_close(plain, torch.tensor([[3.0, -2.0]]))
    torch.testing.assert_close(pair[0], plain)


@pytest.mark.parametrize("flag", [1, 0, None, "yes"])
def test_unit_effects_refuses_a_return_info_that_is_no_bool(flag):
    with pytest.raises(TypeError, match=r"`return_info` to be a bool but got"):
        unit_effects(_model(), X, "1", return_info=flag)


def test_literals_are_the_checked_choices_and_the_hints():
    assert typing.get_args(UnitMethod) == METHODS == ("exact", "attribution", "atp")
    assert typing.get_args(InputMethod) == INPUT_METHODS == ("exact", "attribution")
    assert typing.get_args(Correction) == CORRECTIONS == ("bh", "holm", "none")
    assert typing.get_args(Alternative) == ALTERNATIVES == ("greater", "two-sided")
    assert typing.get_type_hints(unit_effects)["method"] == UnitMethod
    assert typing.get_type_hints(unit_effects)["return_info"] is bool
    assert typing.get_type_hints(input_effects)["method"] == InputMethod
    hints = typing.get_type_hints(causal_graph)
    assert (hints["correction"], hints["alternative"]) == (Correction, Alternative)


def test_values_outside_the_literals_raise_naming_the_parameter():
    with pytest.raises(ValueError, match=r"`method` to be one of \['exact', 'attribution', 'atp'\] but got 'exactly'"):
        unit_effects(_model(), X, "1", method="exactly")
    with pytest.raises(ValueError, match=r"`method` to be one of \['exact', 'attribution'\] but got 'atp'"):
        input_effects(_model(), X, method="atp")
    with pytest.raises(ValueError, match=r"`correction` to be one of \['bh', 'holm', 'none'\] but got 'bonferroni'"):
        causal_graph(_model(), X, ["1"], correction="bonferroni")
    with pytest.raises(ValueError, match=r"`alternative` to be one of \['greater', 'two-sided'\] but got 'less'"):
        causal_graph(_model(), X, ["1"], alternative="less")


def test_scm_noise_literal_values_are_accepted_and_others_raise():
    assert typing.get_type_hints(AdditiveNoiseSCM.__init__)["noise"] == NoiseKind
    for noise in typing.get_args(NoiseKind):
        assert AdditiveNoiseSCM(["a", "b"], {"b": ["a"]}, noise=noise).noise == noise
    with pytest.raises(ValueError, match=r"`noise` to be 'gaussian' or 'residuals' but got 'laplace'"):
        AdditiveNoiseSCM(["a", "b"], {"b": ["a"]}, noise="laplace")


def test_the_significance_helpers_take_the_literals_and_refuse_other_values():
    # review of the change: the module that defines Alternative and Correction typed its own helpers `str`, and a
    # value outside ran the other branch silently (adjust_p_values(p, "bonferroni") was Benjamini-Hochberg)
    for func, parameter, literal in ((p_values, "alternative", Alternative), (z_critical, "alternative", Alternative),
                                     (shares, "alternative", Alternative), (adjust_p_values, "method", Correction)):
        assert typing.get_type_hints(func)[parameter] == literal, func.__name__
    z = torch.tensor([0.0])
    assert p_values(z, "greater").item() == 0.5 and p_values(z, "two-sided").item() == 1.0  # 1 - Φ(0), 2 (1 - Φ(0))
    # Holm on (0.03, 0.04): 2 * 0.03, max(0.06, 1 * 0.04); BH: min(2 * 0.03 / 1, 0.04), 2 * 0.04 / 2
    assert adjust_p_values(torch.tensor([0.03, 0.04]), "holm").tolist() == pytest.approx([0.06, 0.06])
    assert adjust_p_values(torch.tensor([0.03, 0.04]), "bh").tolist() == pytest.approx([0.04, 0.04])
    with pytest.raises(ValueError, match=r"`method` to be one of \['bh', 'holm', 'none'\] but got 'bonferroni'"):
        adjust_p_values(torch.tensor([0.01, 0.04]), "bonferroni")
    for call in (lambda: p_values(z, "less"), lambda: z_critical(0.05, "less"), lambda: shares(z, torch.tensor([0]), "less")):
        with pytest.raises(ValueError, match=r"`alternative` to be one of \['greater', 'two-sided'\] but got 'less'"):
            call()
