"""newuser91 trial (deep-equilibrium models): a fixed-point solver that stops once the batch's residual is below its
tolerance (the implicit-layers tutorial's Anderson and plain iterations: ``(z_new - z).norm() / z_new.norm()`` over
every row) runs as many steps as the batch needs, so a row's output follows its batch-mates. The estimators refused it
(the clean probe's rows alone, or the intervened rows of a pass), but named only thresholds on a batch statistic
(``if h.abs().mean() > t:``) and ``torch.where``: both refusals now name the solver loop, and the stacked rows' the way
out, a residual per row with converged rows kept, which gives each sample's effects alone."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects


class _Relaxation(nn.Module):
    """z <- a z + (1 - a) t per row, a = sigmoid(3 x_1 + 2) (slow where x_1 is large), t = a linear map of x: the
    fixed point is t, reached by iterations under no_grad until the residual is ``tol`` (1%) of the iterate."""

    def __init__(self, per_row: bool, tol: float = 1e-2, steps: int = 500) -> None:
        super().__init__()
        self.rate, self.target, self.per_row, self.tol, self.steps = nn.Linear(4, 1), nn.Linear(4, 2), per_row, tol, steps
        with torch.no_grad():
            self.rate.weight.copy_(torch.tensor([[0.0, 3.0, 0.0, 0.0]]))
            self.rate.bias.fill_(2.0)
            self.target.weight.copy_(torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]]))
            self.target.bias.fill_(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, t = torch.sigmoid(self.rate(x)), self.target(x)
        with torch.no_grad():
            z, done = torch.zeros_like(t), torch.zeros(x.shape[0], 1, dtype=torch.bool)
            for _ in range(self.steps):
                new = a * z + (1 - a) * t
                if self.per_row:  # each row's own residual; a converged row is kept as it is
                    new = torch.where(done, z, new)
                    done = done | ((new - z).norm(dim=1, keepdim=True) < self.tol * new.norm(dim=1, keepdim=True))
                    stop = bool(done.all())
                else:  # the batch's residual
                    stop = bool((new - z).norm() < self.tol * new.norm())
                z = new
                if stop:
                    break
        return a * z + (1 - a) * t  # the one-step call with gradients


_X = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))


def test_a_solver_stopping_on_the_batchs_residual_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match=r"probe samples \[1\] run alone differ .* a solver loop stopping on the "
                                         r"batch's residual"):
        input_effects(_Relaxation(per_row=False).eval(), _X, target=0)
    x = _X.clone()
    x[:, 1] = 1.0  # one rate for every clean row, alike alone and together; the baseline x_1 = 0 mixes two in a pass
    with pytest.raises(ValueError, match=r"intervened rows that input_effects stacks .* a solver loop that stops once the "
                                         r"batch's residual is below its tolerance.* a solver's residual per row, "
                                         r"`\(z_new - z\)\.norm\(dim=1\)`, its converged rows kept as they are"):
        input_effects(_Relaxation(per_row=False).eval(), x, target=0)


def test_the_residual_per_row_gives_each_samples_effects_alone() -> None:
    model = _Relaxation(per_row=True).eval()
    got = input_effects(model, _X, target=0)
    with torch.no_grad():
        alone = torch.stack([torch.stack([model(x[None])[0, 0] - model(x[None] * (torch.arange(4) != g))[0, 0]
                                          for g in range(4)]) for x in _X])
    torch.testing.assert_close(got, alone, rtol=0, atol=1e-6)
