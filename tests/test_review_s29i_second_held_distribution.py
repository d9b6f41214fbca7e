"""A callable ``output=`` reading an undefined moment of a distribution held beside another (``{"a": Normal(...),
"b": Cauchy(...)}`` with ``output=lambda out: out["b"].mean``) gave effects of NaN silently: select_output checked the
callable's value against the first distribution held only (the Normal, whose mean is finite), where the Cauchy held
first was refused. Every distribution held is checked (output_selection._held_distributions); a defined moment read
beside an undefined one is explained as before."""

import pytest
import torch
from torch import nn
from torch.distributions import Cauchy, Normal

from lightning_causal.causal import input_effects

X = torch.tensor([[1.0, 0.5, -1.0], [-0.5, 2.0, 0.0], [0.3, -0.2, 1.0], [-1.0, 0.0, 0.5]])
W = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, -1.0]])


class _Heads(nn.Module):
    """A Normal and a Cauchy of location ``x W_0^T`` and scale ``exp(x W_1^T)``, held in the order ``order``."""

    def __init__(self, order: str) -> None:
        super().__init__()
        self.order, self.w = order, nn.Parameter(W.clone())

    def forward(self, x):
        h = x @ self.w.t()
        normal, cauchy = Normal(h[:, :1], h[:, 1:].exp()), Cauchy(h[:, :1], h[:, 1:].exp())
        return {"a": normal, "b": cauchy} if self.order == "normal first" else {"a": cauchy, "b": normal}


@pytest.mark.parametrize("order, read", [("normal first", "b"), ("cauchy first", "a")])
def test_the_cauchys_mean_is_refused_wherever_it_is_held(order, read):
    with pytest.raises(ValueError, match=rf"to return a defined tensor of the Cauchy at out\['{read}'\] but it returned NaN "
                                         rf"everywhere, where the Cauchy's `mean` is undefined.*`output=lambda out: "
                                         rf"out\['{read}'\].loc`"):
        input_effects(_Heads(order), X, output=lambda out: out[read].mean)


@pytest.mark.parametrize("order, read", [("normal first", "a"), ("cauchy first", "b")])
def test_the_normals_mean_beside_a_cauchy_is_explained(order, read):
    effects = input_effects(_Heads(order), X, output=lambda out: out[read].mean, baseline=0.0)
    # the mean is x W_0^T = x_0 + 2 x_2: feature j set to 0 moves it by W_0j x_j
    torch.testing.assert_close(effects.reshape(4, 3), X * W[0], rtol=0, atol=1e-6)
