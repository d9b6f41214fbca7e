"""Trial (inplace): Resample on a layer called several times per forward pass (weight-tied depth)."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import Resample, unit_effects


class TiedDepth(nn.Module):
    """One block applied three times (weight-tied depth), with a residual stream."""

    def __init__(self) -> None:
        super().__init__()
        self.inp, self.block, self.out = nn.Linear(4, 5), nn.Linear(5, 5), nn.Linear(5, 3)

    def forward(self, x):
        h = torch.tanh(self.inp(x))
        for _ in range(3):
            h = torch.tanh(self.block(h)) + h
        return self.out(h)


def _brute_force(model, x, reference, donors, target):
    """f_t(x) - f_t(x | do(h_u := reference[donor] at every call of the block)); row r = u * N + s."""
    n, units = x.shape[0], reference.shape[1]
    with torch.no_grad():
        f0 = model(x).gather(1, target[:, None])[:, 0]
        cols = []
        for u in range(units):
            donor = reference[donors[u * n:(u + 1) * n], u]

            def hook(_m, _i, out, u=u, donor=donor):
                out = out.clone()
                out[:, u] = donor
                return out

            handle = model.block.register_forward_hook(hook)
            try:
                cols.append(f0 - model(x).gather(1, target[:, None])[:, 0])
            finally:
                handle.remove()
    return torch.stack(cols, 1)


@pytest.mark.parametrize("use_suffix", [True, False])
def test_resample_draws_one_donor_per_row_for_every_call_of_the_layer(use_suffix):
    # each call of the tied block drew its own donors, so a row mixed three donors (not "one draw
    # per row"), and which ones depended on the chunking: max_batch_size=1 and the default differed
    # by 0.15 on the same seed (a performance option changed the numbers)
    torch.manual_seed(0)
    model = TiedDepth().double().eval()
    x = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    reference = torch.randn(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    target = model(x).argmax(1)
    donors = torch.randint(4, (5 * 6,), generator=torch.Generator().manual_seed(0))
    expected = _brute_force(model, x, reference, donors, target)
    for max_batch_size in (1, 4, None):
        got = unit_effects(model, x, "block", Resample(reference, torch.Generator().manual_seed(0)), target=target,
                           max_batch_size=max_batch_size, use_suffix=use_suffix)
        torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)
