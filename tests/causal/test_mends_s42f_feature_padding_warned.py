"""A per-position counterfactual (``CallableCounterfactual(fn, per_position=True)``, the way out the refusal of
``AttributeFlip(k)`` on ``[N, T, F]`` names) keeps its padded positions only from a mask the model is given; a model
that reads its padding from the features (no mask) had every padded item flipped into a real one in silence (final
read C, F1: gap 0.2090 where the padding kept gives 0.1230). Now warned, naming the way out for padding read from the
features, which the refusal names too; with a mask, or the way out followed, nothing is warned."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import AttributeFlip, counterfactual_fairness_gap
from lightning_causal.causal.scm import CallableCounterfactual
from lightning_causal.repair import CounterfactualFairnessTerm

L, D = 6, 5
WAY_OUT = "(x != 0).any(-1, keepdim=True)"


class _Set(nn.Module):
    """Items [N, L, D]; padding from `attention_mask` where given, else read from the features."""

    def __init__(self) -> None:
        super().__init__()
        self.f = nn.Sequential(nn.Linear(D, 8), nn.Tanh(), nn.Linear(8, 2))

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        real = (x != 0).any(-1, keepdim=True) if attention_mask is None else attention_mask[..., None].bool()
        return (self.f(x) * real).sum(1)


def _data() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    n = 32
    x = torch.rand(n, L, D) + 0.1
    x[..., 4] = (torch.rand(n, L) > 0.5).float()
    lengths = torch.randint(2, L + 1, (n,))
    mask = (torch.arange(L)[None] < lengths[:, None]).long()
    x[mask == 0] = 0.0
    return _Set().eval(), x, mask


def _flip(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x[..., :4], 1 - x[..., 4:]], -1)


def _gap(*args, **kwargs) -> tuple[dict, list[str]]:
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        gap = counterfactual_fairness_gap(*args, **kwargs)
    return gap, [str(m.message) for m in w if "per-position counterfactual" in str(m.message)]


def test_a_per_position_flip_of_all_zero_positions_without_a_mask_is_warned_with_the_way_out():
    model, x, mask = _data()
    _, warned = _gap(model, x, CallableCounterfactual(_flip, per_position=True))
    assert len(warned) == 1 and WAY_OUT in warned[0] and "attention_mask" in warned[0]
    kept, warned_masked = _gap(model, x, CallableCounterfactual(_flip, per_position=True),
                               additional_forward_args={"attention_mask": mask})
    assert warned_masked == []  # the mask keeps the padded items
    way_out = CallableCounterfactual(lambda x: _flip(x) * (x != 0).any(-1, keepdim=True), per_position=True)
    followed, warned_followed = _gap(model, x, way_out)
    assert warned_followed == []
    assert followed["mean_abs"] == pytest.approx(kept["mean_abs"], abs=1e-6)  # the padding kept both ways
    torch.testing.assert_close(followed["delta"], kept["delta"])


def test_a_flip_that_is_not_per_position_is_not_warned():
    model, x, _ = _data()
    _, warned = _gap(model, x, CallableCounterfactual(_flip))
    assert warned == []


def test_the_refusal_of_a_column_flip_names_both_ways_of_keeping_padding():
    model, x, _ = _data()
    with pytest.raises(ValueError) as e:
        counterfactual_fairness_gap(model, x, AttributeFlip(4))
    assert "per_position=True" in str(e.value) and "attention_mask" in str(e.value) and WAY_OUT in str(e.value)


def test_the_repair_term_warns_once():
    model, x, _ = _data()
    term = CounterfactualFairnessTerm(CallableCounterfactual(_flip, per_position=True))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        for _ in range(2):
            term.loss(model, x, None)
    warned = [str(m.message) for m in w if "per-position counterfactual" in str(m.message)]
    assert len(warned) == 1 and WAY_OUT in warned[0]
