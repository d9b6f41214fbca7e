"""A DUQ head (van Amersfoort et al. 2020: RBF kernel values ``exp(-||W f(x) - e_c||^2 / 2 sigma^2)`` to each class's
centroid, every one in (0, 1], one-vs-rest, rows not summing to 1) audited by ``FairnessAudit``: its default
``compare="probability"`` took the softmax of the kernel values and reported that softmax's change as cf_gap in silence
(measured on a DUQ trained on 3 classes: 0.0064 where the predicted class's kernel moved by 0.021), while
``SobolAudit`` and ``CaptumBaseline`` warned of the same softmax. It warns now, naming ``compare='output'`` with
``target=k`` and class k's logit; both ways out give the kernel's own change (by hand here). Logits, and outputs of a
model that says it trains logits (an ``nn.CrossEntropyLoss`` held), are not warned of."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import AttributeFlip, FairnessAudit
from lightning_causal.audits import Probe

SAYS = "lies in [0, 1] and their rows do not sum to 1"


class DUQHead(nn.Module):
    """Fixed weights: a 2-d embedding of 3 columns (column 2 the sensitive 0/1 attribute), 3 class centroids."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(3, 2, bias=False)
        with torch.no_grad():
            self.embed.weight.copy_(torch.tensor([[1.0, 0.0, 0.6], [0.0, 1.0, -0.3]]))
        self.register_buffer("centroids", torch.tensor([[0.0, 0.0], [1.5, 0.0], [0.0, 1.5]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.embed(x)
        return torch.exp(-((z[:, None, :] - self.centroids) ** 2).sum(-1) / (2 * 0.7**2))  # [N, 3] in (0, 1]


class SaysLogits(DUQHead):
    def __init__(self) -> None:
        super().__init__()
        self.loss = nn.CrossEntropyLoss()  # trains its outputs as logits, small as they are


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=g)
    x[:, 2] = (torch.rand(64, generator=g) < 0.5).float()
    with torch.no_grad():
        y = DUQHead()(x).argmax(1)
    return x, y


def _run(model: nn.Module, binary: bool = False, **kwargs) -> tuple[dict[str, float], list[str]]:
    x, y = _data()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = FairnessAudit(AttributeFlip(2), **kwargs).run(model.eval(), Probe(x, (y == 1).long() if binary else y))
    return result.scalars, [str(w.message) for w in caught if SAYS in str(w.message)]


def test_the_softmax_of_kernel_values_is_warned_of_naming_the_ways_out():
    scalars, said = _run(DUQHead())
    assert len(said) == 1 and "FairnessAudit 'fairness'" in said[0]
    assert "compare='output' with target=k" in said[0] and "out[:, [k]].float().logit(eps=1e-6)" in said[0]
    assert "labels `(y == k).long()`" in said[0]
    x, _ = _data()
    x_cf = x.clone()
    x_cf[:, 2] = 1 - x_cf[:, 2]
    with torch.no_grad():
        k, k_cf = DUQHead()(x), DUQHead()(x_cf)
    softmax_gap = (k_cf.softmax(1) - k.softmax(1)).gather(1, k.argmax(1, keepdim=True)).abs().mean()
    assert scalars["cf_gap"] == pytest.approx(float(softmax_gap), abs=1e-6)  # what it reported: the softmax's change
    own = float((k_cf[:, 1] - k[:, 1]).abs().mean())  # class 1's own kernel value, by hand
    assert own > 1.5 * scalars["cf_gap"]
    raw, said_raw = _run(DUQHead(), compare="output", target=1)
    logit, said_logit = _run(DUQHead(), binary=True, output=lambda out: out[:, [1]].float().logit(eps=1e-6))
    assert said_raw == [] and said_logit == []
    assert raw["cf_gap"] == pytest.approx(own, abs=1e-6)
    assert logit["cf_gap"] == pytest.approx(own, abs=1e-5)


def test_logits_are_not_warned_of():
    assert _run(DUQHead(), output=lambda out: out.log())[1] == []  # -||z - e_c||^2 / 2 sigma^2: logits
    assert _run(SaysLogits())[1] == []  # an nn.CrossEntropyLoss held: its outputs are logits
