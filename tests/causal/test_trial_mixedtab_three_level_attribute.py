"""A sensitive attribute of three levels: a flip is refused with the way out, and that way out
(a callable counterfactual through the SCM) gives the brute-force gap."""

import pytest
import torch
from torch import nn

from lightning_causal.causal.scm import AdditiveNoiseSCM, AttributeFlip, counterfactual_fairness_gap


def _data() -> tuple[torch.Tensor, AdditiveNoiseSCM]:
    g = torch.Generator().manual_seed(0)
    race = torch.randint(0, 3, (200,), generator=g).double()
    m1 = 0.5 * race + torch.randn(200, generator=g, dtype=torch.float64)
    x = torch.stack([race, m1, torch.randn(200, generator=g, dtype=torch.float64)], 1)
    return x, AdditiveNoiseSCM(["race", "m1", "x3"], {"m1": ["race"]}).fit(x)


@pytest.mark.parametrize("make", [lambda scm: scm.flip("race"), lambda scm: AttributeFlip("race", columns=scm.columns),
                                  lambda scm: AttributeFlip(0, values=(0, 2))])
def test_flip_of_a_three_level_column_names_the_levels_and_the_callable(make) -> None:
    x, scm = _data()
    with pytest.raises(ValueError, match=r"3 levels \(0, 1, 2\).*three or more levels pass a callable counterfactual"):
        counterfactual_fairness_gap(nn.Linear(3, 2).double(), x, make(scm))


def test_the_suggested_callable_matches_brute_force() -> None:
    x, scm = _data()
    model = nn.Linear(3, 2).double()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 0.0, 0.0], [0.8, -1.2, 0.5]], dtype=torch.float64))
        model.bias.zero_()
    gap = counterfactual_fairness_gap(model, x, lambda x: scm.counterfactual(x, {"race": (x[:, 0] + 1) % 3}))
    # brute force: the fitted linear SCM m1 = a + b race + u; do(race := r') keeps u
    b = torch.linalg.lstsq(torch.stack([torch.ones(200, dtype=torch.float64), x[:, 0]], 1), x[:, 1:2]).solution[1, 0]
    x_cf = x.clone()
    x_cf[:, 0] = (x[:, 0] + 1) % 3
    x_cf[:, 1] = x[:, 1] + b * (x_cf[:, 0] - x[:, 0])
    with torch.no_grad():
        p, p_cf = model(x).softmax(1), model(x_cf).softmax(1)
    t = p.argmax(1, keepdim=True)
    assert gap["mean_abs"] == pytest.approx((p_cf.gather(1, t) - p.gather(1, t)).abs().mean().item(), abs=1e-10)
    assert gap["changed"] == 1.0
