"""Review of f9f2c9cb: ``CounterfactualFairnessTerm(distance="logit")`` set the difference of a logit equal in both
rows to 0 with ``masked_fill(a == b, 0)``, which also cut that logit's gradient where it is finite: a class head
initialised to zero (a class-incremental model's new class, logit 0 in every row) got no gradient from the term,
though the centred pairing moves it. Only the same infinity in both rows (a class ruled out with ``-inf``) is set to 0."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal import CounterfactualFairnessTerm
from lightning_causal.causal import AttributeFlip


def test_a_finite_logit_equal_in_both_rows_keeps_the_gradient_of_the_plain_pairing() -> None:
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    with torch.no_grad():
        model.weight[2].zero_()
        model.bias[2] = 0.0  # the new class's head: logit 0 in both rows
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
    x[:, 0] = (x[:, 0] > 0).float()
    CounterfactualFairnessTerm(AttributeFlip(0), distance="logit").loss(model, x, None).backward()
    got = model.weight.grad.clone()
    model.weight.grad = None
    flipped = x.clone()
    flipped[:, 0] = 1 - flipped[:, 0]
    d = model(x) - model(flipped)  # Garg et al.'s pairing of the centred logits, as written
    (d - d.mean(1, keepdim=True)).abs().sum(1).mean().backward()
    assert model.weight.grad[2].abs().sum() > 0.1
    assert torch.allclose(got, model.weight.grad, atol=1e-7)  # before: got[2] was 0
