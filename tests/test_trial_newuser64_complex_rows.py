"""newuser64 trial: a Fourier neural operator whose spectral layer's modes (complex, ``torch.fft.rfft``) are the units.
``UnitImportanceAudit(["spec1.mix"], unit_dim=-1, method="attribution")`` and ``CausalGraphAudit`` on such layers
stopped with "Expected the intervened rows ... to give what they give alone ... (max |difference| nan)" though the
values shown were equal to 7 digits: the check of stacked rows compared complex values exactly (``torch.equal``,
as for integers), so the last-digit rounding of a batched kernel (an ``einsum`` over the modes) read as a forward
that depends on its batch. Complex values are now compared within the tolerance real ones are."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects
from lightning_causal.causal.engine.live_values import close
from lightning_causal.causal.engine.sample_independence import same_outputs


class _ToComplex(nn.Module):
    def forward(self, x):  # [N, 2, 3] -> complex units [N, 3]
        return torch.complex(x[:, 0], x[:, 1])


class _Rounding(nn.Module):
    def forward(self, z):  # a batched kernel's rounding: its last digits depend on the batch size
        return z * (1 + 1e-6 * (len(z) > 1))


class _Head(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([1.0, 2.0, 3.0]))

    def forward(self, z):  # linear in the real and imaginary parts: the first-order estimate is exact
        return torch.stack([z.imag @ self.w, z.real @ self.w], 1)


@pytest.mark.parametrize("target", [0, 1])
def test_first_order_effects_of_complex_units_pass_the_stacked_rows_check(target: int) -> None:
    model = nn.Sequential(_ToComplex(), _Rounding(), _Head()).eval()
    x = torch.randn(4, 2, 3, generator=torch.Generator().manual_seed(0))
    w = torch.tensor([1.0, 2.0, 3.0])
    want = (x[:, 1] if target == 0 else x[:, 0]) * w * (1 + 1e-6)  # zeroing unit u removes its term
    approx = unit_effects(model, x, "0", target=target, method="attribution")
    torch.testing.assert_close(approx, want)
    torch.testing.assert_close(unit_effects(model, x, "0", target=target), want)


def test_complex_values_are_compared_within_rounding() -> None:
    a = torch.tensor([3 + 4j, -1 - 2j])
    diff, same = same_outputs(a, a * (1 + 1e-7))  # float32 rounding of |a| ~ 5: a few 1e-7
    assert same and 0 < diff < 1e-5
    diff, same = same_outputs(a, a + 0.5j)  # 0.5 against 1% of 1 + |3 + 4.5j|
    assert (diff, same) == (pytest.approx(0.5), False)
    assert close(a, a * (1 + 1e-7)) and not close(a, a + 0.5j)
    assert not close(a, a.real)  # complex beside real: not the same values
