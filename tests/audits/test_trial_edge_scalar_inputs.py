"""Trial "edge": a model of one scalar input per sample, ``x`` of shape ``[N]``. The layer map
crashed on it (IndexError), and InputEffectAudit's
finiteness check of its ACE probe (6baeda2) and SobolAudit's (462dec2) flattened ``x.flatten(1)``
and crashed with an IndexError on such inputs; InputEffectAudit ran before. Its effect is the
hand-computed f_t(x) - f_t(x | do(x := 0))."""

import pytest
import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit, LayerMapAudit, Probe, SobolAudit
from lightning_causal.causal import layer_causal_map


class Univariate(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.l1, self.l2 = nn.Linear(1, 4), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l2(torch.tanh(self.l1(x.unsqueeze(-1))))


def test_input_effects_of_a_scalar_input_per_sample():
    model, x = Univariate().double().eval(), torch.randn(6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    result = InputEffectAudit(target=0).run(model, Probe(x))
    with torch.no_grad():
        expected = (model(x)[:, 0] - model(torch.zeros_like(x))[:, 0]).abs().mean()
    assert abs(result.scalars["mean_abs_effect"] - float(expected)) < 1e-12
    assert "mean_ace_range" in result.scalars


def test_sobol_of_a_scalar_input_per_sample_gets_past_its_probe_check():
    x = torch.randn(6, generator=torch.Generator().manual_seed(1))
    x[2] = float("nan")
    with pytest.raises(ValueError, match=r"samples \[2\] of 6 hold NaN"):
        SobolAudit(n=64).run(Univariate().eval(), Probe(x))


def test_the_layer_map_of_a_scalar_input_per_sample():
    # before: IndexError (x.flatten(1) of the input change and the layers' norms)
    model, x = Univariate().double().eval(), torch.randn(6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    lm = layer_causal_map(model, x, None, layers=["l1", "l2"])
    with torch.no_grad():
        h, h0 = model.l1(x.unsqueeze(-1)), model.l1(torch.zeros(6, 1, dtype=torch.float64))
    expected = float((h - h0).norm(dim=1).mean() / h.norm(dim=1).mean())  # s = E||delta h|| / E||h|| of do(x := 0)
    assert abs(float(lm.response[0]) - expected) < 1e-12
    assert abs(lm.meta["input_response"] - 1.0) < 1e-12  # do(x := 0) moves the input by |x|, its own norm
    assert LayerMapAudit().run(Univariate().eval(), Probe(x.float())).scalars["n_layers"] == 2.0
