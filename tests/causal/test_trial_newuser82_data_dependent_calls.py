"""newuser82 trial (deep-equilibrium blocks, adaptive ODE solvers): a weight-tied block iterated until every row has
converged runs as many times as its slowest row needs, so a chunk of rows calls it more often than one row alone.
The first-order estimates (``method='atp'``/``'attribution'``, ``screen=``) pair each call's gradient over the chunks
and ended on a bare ``RuntimeError: Expected layer 'block' to be called alike for every chunk of rows``, naming neither
the cause nor a way out; the exact interventions serve such a model (each pass sets the unit at every call it makes)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import SetTo, unit_effects


class _UntilConverged(nn.Module):
    """z <- (z + tanh(block(z) + u)) / 2 per row until the row moves less than 1e-9; converged rows are kept as they
    are, so a row's value is its own whatever the batch, while the number of calls follows the slowest row."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.enc, self.block, self.head = nn.Linear(3, 4), nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.enc(x)
        z = torch.zeros_like(u)
        done = torch.zeros(x.shape[0], 1, dtype=torch.bool, device=x.device)
        for _ in range(200):
            new = 0.5 * z + 0.5 * torch.tanh(self.block(z) + u)
            moved = (new - z).abs().amax(1, keepdim=True)
            z = torch.where(done, z, new)
            done = done | (moved < 1e-9)
            if bool(done.all()):
                break
        return self.head(z)


def _inputs() -> torch.Tensor:
    x = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    return x * torch.linspace(0.0, 3.0, 6, dtype=torch.float64)[:, None]  # row 0 at 0: converges first


def _by_hand(model: nn.Module, x: torch.Tensor, value: float) -> torch.Tensor:
    """f_t(x) - f_t(x | do(block_u := value) at every call), one full hooked pass per unit."""
    with torch.no_grad():
        out = model(x)
        target = out.argmax(1, keepdim=True)
        effects = []
        for u in range(4):
            def hook(_m: nn.Module, _i: object, o: torch.Tensor, u: int = u) -> torch.Tensor:
                o = o.clone()
                o[:, u] = value
                return o
            handle = model.block.register_forward_hook(hook)
            try:
                effects.append((out.gather(1, target) - model(x).gather(1, target))[:, 0])
            finally:
                handle.remove()
    return torch.stack(effects, 1)


def test_first_order_estimates_of_a_block_whose_calls_follow_the_rows_are_refused_in_words() -> None:
    model, x = _UntilConverged().double().eval(), _inputs()
    for method in ("atp", "attribution"):
        with pytest.raises(ValueError, match=r"Expected layer 'block' to run alike for every chunk of rows of the "
                                             r"first-order estimates .* but it ran \d+ times on \d+ row\(s\) and \d+ times "
                                             r"on \d+: the number of its calls follows the rows .* Use method='exact'"):
            unit_effects(model, x, "block", SetTo(0.3), method=method)
    with pytest.raises(ValueError, match=r"the number of its calls follows the rows"):
        unit_effects(model, x, "block", SetTo(0.3), screen=2)


def test_the_exact_way_out_equals_full_hooked_passes() -> None:
    model, x = _UntilConverged().double().eval(), _inputs()
    got, info = unit_effects(model, x, "block", SetTo(0.3), return_info=True)
    assert info.calls > 1
    torch.testing.assert_close(got, _by_hand(model, x, 0.3), atol=1e-12, rtol=0)
