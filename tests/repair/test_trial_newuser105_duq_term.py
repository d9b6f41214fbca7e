"""``CounterfactualFairnessTerm`` on a DUQ head (one RBF kernel value per class in (0, 1], rows not summing to 1) beside
class indices: its default ``distance='abs_prob'`` compares the softmax of the kernel values, whose change is smaller
than the kernels' own (here by hand), in silence, where the audits warn of that softmax. It warns now, once, naming
``distance='logit'``; not under ``distance='logit'``, nor on logits."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from lightning_causal import AttributeFlip, CounterfactualFairnessTerm
from tests.audits.test_trial_newuser105_duq_fairness import (  # the audit test's kernel head
    SAYS,
    DUQHead,
)


def _loss(model: nn.Module, **kwargs) -> tuple[torch.Tensor, list[str]]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 3, generator=g)
    x[:, 2] = (torch.rand(32, generator=g) < 0.5).float()
    y = torch.randint(0, 3, (32,), generator=g)
    term = CounterfactualFairnessTerm(AttributeFlip(2), **kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = term.loss(model, x, y)
        term.loss(model, x, y)  # the second batch: no second warning
    return value, [str(w.message) for w in caught if SAYS in str(w.message)]


def test_the_softmax_of_kernel_values_is_warned_of_naming_the_logit_distance():
    model = DUQHead()
    value, said = _loss(model)
    assert len(said) == 1 and "CounterfactualFairnessTerm 'counterfactual_fairness' (distance='abs_prob')" in said[0]
    assert "distance='logit'" in said[0]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 3, generator=g)
    x[:, 2] = (torch.rand(32, generator=g) < 0.5).float()
    x_cf = x.clone()
    x_cf[:, 2] = 1 - x_cf[:, 2]
    with torch.no_grad():
        k, k_cf = model(x), model(x_cf)
    assert float(value) < 0.5 * float((k - k_cf).abs().sum(1).mean() / 2)  # the softmax's change: compressed
    assert _loss(DUQHead(), distance="logit")[1] == []


def test_logits_are_not_warned_of():
    torch.manual_seed(0)
    assert _loss(nn.Linear(3, 3))[1] == []
    assert _loss(DUQHead(), distance="sym_kl")[1] != []
