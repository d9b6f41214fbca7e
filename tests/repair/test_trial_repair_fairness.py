"""Trial (repair): CounterfactualFairnessTerm on a user's tabular model, checked against a
hand-written float64 reference, and its warning for a flip of one column of a one-hot block."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lightning_causal.causal import AttributeFlip
from lightning_causal.repair import CounterfactualFairnessTerm


def _rows(n: int = 32):
    g = torch.Generator().manual_seed(0)
    feat = torch.randn(n, 3, generator=g, dtype=torch.float64)
    sex = torch.arange(n) % 2
    return feat, sex


def _model(d: int, c: int) -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(d, 8), nn.Tanh(), nn.Linear(8, c)).double()


@pytest.mark.parametrize("classes", [2, 3])
def test_term_on_an_integer_coded_column_matches_a_hand_computed_float64_value(classes):
    feat, sex = _rows()
    x = torch.cat([feat, (sex + 1).double()[:, None]], 1)  # coded 1 / 2
    x_cf = x.clone()
    x_cf[:, 3] = 3 - x_cf[:, 3]
    model = _model(4, classes)
    with torch.no_grad():
        z, zc = model(x), model(x_cf)
    p, q = z.softmax(1), zc.softmax(1)
    d = z - zc
    expected = {"abs_prob": (0.5 * (p - q).abs().sum(1)).mean(),
                "sym_kl": (0.5 * ((p - q) * (p.log() - q.log())).sum(1)).mean(),
                "logit": (d - d.mean(1, keepdim=True)).abs().sum(1).mean()}
    for distance, value in expected.items():
        term = CounterfactualFairnessTerm(AttributeFlip(3, values=(1, 2)), distance=distance)
        torch.testing.assert_close(term.loss(model, x, None).detach(), value, rtol=1e-12, atol=1e-15)


def test_flipping_one_column_of_a_one_hot_block_warns_as_the_audit_does():
    feat, sex = _rows()
    x = torch.cat([feat, F.one_hot(sex, 2).double()], 1)  # columns 3, 4: the one-hot sensitive attribute
    model = _model(5, 2)
    term = CounterfactualFairnessTerm(AttributeFlip(3))
    with pytest.warns(UserWarning, match=r"column 3 is one-hot encoded with columns \[4\].*callable"):
        term.loss(model, x, None)
    with warnings.catch_warnings():  # once, not every step
        warnings.simplefilter("error")
        term.loss(model, x, None)
    swap = CounterfactualFairnessTerm(lambda t: torch.cat([t[:, :3], t[:, 3:].flip(1)], 1), sensitive=3)
    with warnings.catch_warnings():  # the block changed together: no warning
        warnings.simplefilter("error")
        value = swap.loss(model, x, None)
    with torch.no_grad():
        p, q = model(x).softmax(1), model(torch.cat([x[:, :3], x[:, 3:].flip(1)], 1)).softmax(1)
    torch.testing.assert_close(value.detach(), (0.5 * (p - q).abs().sum(1)).mean(), rtol=1e-12, atol=1e-15)
