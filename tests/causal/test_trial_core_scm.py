"""Trial (core): the SCM tools as a researcher calls them, against known structural equations."""

import pytest
import torch

from lightning_causal.causal import AdditiveNoiseSCM
from lightning_causal.causal.scm.structural_functions import MLPFunction


def _data() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    a = torch.rand(300, generator=g) * 4 - 2
    return torch.stack([a, a**2 + 0.1 * torch.randn(300, generator=g)], 1)


def test_mlp_function_fit_leaves_the_global_rng_alone():
    # its docstring promises a private generator; nn.Linear's default init drew from the global RNG
    x = _data()
    state = torch.get_rng_state()
    f = MLPFunction(hidden=8, steps=5).fit(x[:, :1], x[:, 1])
    AdditiveNoiseSCM(["a", "b"], {"b": ["a"]}, regressor=lambda: MLPFunction(hidden=8, steps=5)).fit(x)
    assert torch.equal(state, torch.get_rng_state())
    # and the fit is still its seed's: the same numbers again
    g = MLPFunction(hidden=8, steps=5).fit(x[:, :1], x[:, 1])
    assert torch.equal(f(x[:5, :1]), g(x[:5, :1]))


def test_counterfactual_values_of_the_wrong_length_or_not_finite_are_refused_by_name():
    # before: a raw RuntimeError from expand() for a wrong length; NaN gave NaN rows silently
    scm = AdditiveNoiseSCM.linear(["a", "m"], {"m": {"a": 2.0}})
    x = torch.tensor([[0.0, 0.5], [1.0, 2.0], [0.0, -1.0]])
    with pytest.raises(ValueError, match=r"intervention 'a'.*shape \[3\].*\[2\]"):
        scm.counterfactual(x, {"a": torch.ones(2)})
    with pytest.raises(ValueError, match=r"intervention 'a' to be finite"):
        scm.counterfactual(x, {"a": float("nan")})
    # numbers, [N] and one-element tensors: m_cf = m + 2 (a_cf - a)
    for value in (1.0, torch.tensor([1.0]), torch.ones(3)):
        torch.testing.assert_close(scm.counterfactual(x, {"a": value}), torch.tensor([[1.0, 2.5], [1.0, 2.0], [1.0, 1.0]]))


def test_fairness_gap_shares_are_exact_fractions():
    # flip_rate and changed were float32 means: 21 flips of 50 read 0.41999998688697815 in reports
    from torch import nn

    from lightning_causal.causal import AttributeFlip, counterfactual_fairness_gap

    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 2.0]]))
    s = torch.tensor([1.0] * 21 + [0.0] * 29)
    # logit_1 = s + 2 z: the 21 rows (s=1, z=0) go from class 1 to a tie (class 0); the 29 (s=0, z=1) stay class 1
    x = torch.stack([s, 1.0 - s], 1)
    gap = counterfactual_fairness_gap(model, x, AttributeFlip(0), target=1)
    assert gap["flip_rate"] == 21 / 50
    assert gap["changed"] == 1.0
