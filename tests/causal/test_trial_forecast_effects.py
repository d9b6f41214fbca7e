"""Forecasters [N, T, F] -> [N, H] (GRU, LSTM, TCN on [N, F, T], TransformerEncoder, MLP on
flattened lags): input effects per (lag, feature) and per horizon equal a float64 loop that sets each
element to 0 and reruns the model; unit effects of a GRU's output features and of an unrolled GRUCell
(whose intervention enters the recurrence) equal hand-written hooks; Sobol' indices and the ACE
curve of a linear forecaster equal their analytic values."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F_
from torch import nn

from lightning_causal.causal import (
    average_causal_effect,
    input_effects,
    sobol_indices,
    unit_effects,
)
from lightning_causal.causal.sensitivity.samplers import EmpiricalMarginals

T, F, H = 8, 3, 2


class _Recurrent(nn.Module):
    def __init__(self, cell: type[nn.Module]) -> None:
        super().__init__()
        self.rnn, self.head = cell(F, 6, batch_first=True), nn.Linear(6, H)

    def forward(self, x):
        return self.head(self.rnn(x)[0][:, -1])


class _TCN(nn.Module):  # [N, F, T]: dilated causal convolutions
    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2, self.head = nn.Conv1d(F, 6, 2), nn.Conv1d(6, 6, 2, dilation=2), nn.Linear(6, H)

    def forward(self, x):
        h = torch.relu(self.c1(F_.pad(x, (1, 0))))
        return self.head(torch.relu(self.c2(F_.pad(h, (2, 0))))[:, :, -1])


class _Transformer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(F, 8)
        layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        self.enc, self.head = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False), nn.Linear(8, H)

    def forward(self, x):
        return self.head(self.enc(self.inp(x))[:, -1])


class _Cell(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cell, self.head = nn.GRUCell(F, 5), nn.Linear(5, H)

    def forward(self, x):
        h = x.new_zeros(x.shape[0], 5)
        for t in range(x.shape[1]):
            h = self.cell(x[:, t], h)
        return self.head(h)


MODELS = {
    "gru": lambda: _Recurrent(nn.GRU),
    "lstm": lambda: _Recurrent(nn.LSTM),
    "tcn": _TCN,
    "transformer": _Transformer,
    "mlp": lambda: nn.Sequential(nn.Flatten(), nn.Linear(T * F, 8), nn.ReLU(), nn.Linear(8, H)),
}


def _x(n: int = 10) -> torch.Tensor:
    return torch.randn(n, T, F, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_effects_per_lag_and_feature_equal_a_float64_loop(kind: str) -> None:
    torch.manual_seed(0)
    model = MODELS[kind]().double().eval()
    x, mask = _x(), torch.arange(T * F).reshape(1, T, F)
    if kind == "tcn":
        x, mask = x.transpose(1, 2).contiguous(), mask.transpose(1, 2).contiguous()
    for h in range(H):
        with torch.no_grad():
            clean = model(x)[:, h]
            expected = torch.stack([clean - model(x.masked_fill(mask == g, 0.0))[:, h] for g in range(T * F)], 1)
        torch.testing.assert_close(input_effects(model, x, mask, target=h), expected, rtol=0, atol=1e-12)


def test_unit_effects_of_a_gru_output_and_of_an_unrolled_cell_equal_hooks() -> None:
    torch.manual_seed(0)
    x = _x()
    for model, site, units, dim in ((_Recurrent(nn.GRU).double().eval(), "rnn", 6, -1), (_Cell().double().eval(), "cell", 5, 1)):
        module = dict(model.named_modules())[site]
        for h in range(H):
            with torch.no_grad():
                clean, expected = model(x)[:, h], []
                for u in range(units):
                    def zero(m, i, o, u=u):
                        if isinstance(o, tuple):  # nn.GRU: (output sequence, last state); the sequence is intervened on
                            return (o[0].index_fill(-1, torch.tensor([u]), 0.0), o[1])
                        return o.index_fill(1, torch.tensor([u]), 0.0)  # GRUCell: the state fed to the next step
                    handle = module.register_forward_hook(zero)
                    expected.append(clean - model(x)[:, h])
                    handle.remove()
            got = unit_effects(model, x, site, target=h, unit_dim=dim)
            torch.testing.assert_close(got, torch.stack(expected, 1), rtol=0, atol=1e-12)


class _Linear(nn.Module):
    """Horizon 0 = 1.5 x[:, T-3, 0] + 0.5 x[:, T-1, 2]; horizon 1 = 0.2 x[:, T-3, 0] + 2 x[:, T-1, 2]."""

    def forward(self, x):
        a, b = x[:, T - 3, 0], x[:, T - 1, 2]
        return torch.stack([1.5 * a + 0.5 * b, 0.2 * a + 2.0 * b], 1)


def test_sobol_indices_and_ace_of_a_linear_forecaster_are_analytic() -> None:
    x = _x(256)
    features = torch.arange(F).expand(1, T, F)
    var_a, var_b = float(x[:, T - 3, 0].var()), float(x[:, T - 1, 2].var())
    for h, (wa, wb) in enumerate([(1.5, 0.5), (0.2, 2.0)]):
        res = sobol_indices(lambda z, h=h: _Linear()(z.reshape(-1, T, F))[:, h], EmpiricalMarginals(x.reshape(256, -1)),
                            2048, features.reshape(-1), n_bootstrap=0, seed=0)
        total = wa**2 * var_a + wb**2 * var_b
        torch.testing.assert_close(res.first.double(), torch.tensor([wa**2 * var_a / total, 0.0, wb**2 * var_b / total],
                                                                    dtype=torch.float64), rtol=0, atol=0.04)
    values = torch.tensor([-1.0, 0.0, 2.0], dtype=torch.float64)
    ace = average_causal_effect(_Linear(), x, torch.arange(T * F).reshape(1, T, F), values, target=1)
    expected = torch.zeros(T * F, 3, dtype=torch.float64)
    expected[(T - 3) * F + 0] = 0.2 * (values - values.mean())
    expected[(T - 1) * F + 2] = 2.0 * (values - values.mean())
    torch.testing.assert_close(ace, expected, rtol=0, atol=1e-12)
