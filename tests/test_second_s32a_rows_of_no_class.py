"""A stamped row whose outputs are -inf in every class (a mask ruling every class out; on a ``Contrast``, the model and
its feature-shifted copy sharing no class there, frequent once f89c9283 let ``BackdoorSuppressionTerm``'s contrast run
on top-k gated models) reaches no class, yet ``argmax`` gives it as class 0: Neural Cleanse's search and its final
rates, and ``attack_success_rate``, counted it as reaching class 0, so that a trigger driving rows out of every class
was class 0's trigger, and flagged (second_s32a). Such a row now reaches no class."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal.backdoor.neural_cleanse import neural_cleanse
from lightning_causal.causal.backdoor.trigger_search import _init_theta, _optimise_classes, _prepare
from lightning_causal.causal.backdoor.triggers import Trigger, attack_success_rate


class _NoClassAbove(nn.Module):
    """4 classes of 4x4 images: every class ruled out (-inf) where the image's mean m is above 0.35; below, class 0's
    logit 20 (m - 0.4) < -1 never beats class 1's 0, so the model gives class 0 to no input at all."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.flatten(1).mean(1)
        z = torch.stack([20 * (m - 0.4), torch.zeros_like(m), x[:, 0, 0, 0] * 4 - 3, x[:, 0, 3, 3] * 4 - 3], 1)
        return z.masked_fill(m.unsqueeze(1) > 0.35, float("-inf"))


def _x() -> torch.Tensor:
    return torch.rand(32, 1, 4, 4, generator=torch.Generator().manual_seed(1)) * 0.5  # means near 0.25: class 1


def test_attack_success_rate_counts_no_row_of_no_class_as_class_0() -> None:
    x, model = _x(), _NoClassAbove()
    white = Trigger(torch.ones(1, 4, 4), torch.ones(1, 4, 4), target=0)  # every stamped row of mean 1: no class
    assert model(white.apply(x)).isneginf().all().item()
    assert attack_success_rate(model, x, torch.full((32,), 1), white) == 0.0  # before: 1.0


@pytest.mark.filterwarnings("ignore:every one of the 32 inputs is already predicted as class 1")
def test_neural_cleanse_neither_reaches_nor_flags_a_class_the_model_never_gives() -> None:
    x, model = _x(), _NoClassAbove()
    res = neural_cleanse(model, x, 4, steps=300)
    assert float(res.attack_rates[0]) == 0.0 and res.flagged == []  # before: 0.40625, and class 0 flagged
    run = _prepare(model, x, 300, 0.1, 1e-3, 0.99, 64, 10, None, None, None, None, None)
    theta_m, theta_p = _init_theta((1, *run.mshape), run.generator, x.device), _init_theta((1, 1, 4, 4), run.generator, x.device)
    reached = _optimise_classes(run.fwd, x, model(x).argmax(1), torch.tensor([0]), theta_m, theta_p, run.batches, run.cfg)[3]
    assert reached.tolist() == [False]  # before: True, the rows it drove out of every class read as class 0
