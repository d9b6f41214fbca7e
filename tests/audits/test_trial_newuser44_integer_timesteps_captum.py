"""CaptumBaseline on the integer timesteps of a diffusion-style denoiser (newuser44 trial): its refusal of gradient
methods for integer inputs advised `input_layer='bert.embeddings.word_embeddings'` whatever the model, also one that
holds no nn.Embedding at all (timesteps read through a sinusoidal embedding), where no layer method can take them.
The refusal names the model's own embedding, or perturbation methods where it holds none; both ways out run."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

from lightning_causal import CaptumBaseline
from lightning_causal.audits import Probe

STEPS = 20


def sinusoidal(t: torch.Tensor, dim: int = 8) -> torch.Tensor:
    freqs = torch.exp(-math.log(1000.0) * torch.arange(dim // 2) / (dim // 2))
    angles = t.float()[:, None] * freqs
    return torch.cat([angles.sin(), angles.cos()], 1)


class TimestepDenoiser(nn.Module):
    """``forward(t, x_t)``: the timesteps first, as a column ``[N, 1]`` (Captum's methods take a feature dimension), so
    that the audits explain them; a region's predicted noise, [N, 1]."""

    def __init__(self, table: bool) -> None:
        super().__init__()
        self.temb = nn.Embedding(STEPS, 8) if table else None
        self.proj = nn.Linear(8, 4)
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.out = nn.Conv2d(4, 1, 3, padding=1)

    def forward(self, t: torch.Tensor, x_t: torch.Tensor) -> torch.Tensor:
        e = self.temb(t)[:, 0] if self.temb is not None else sinusoidal(t[:, 0])
        h = torch.relu(self.conv(x_t) + self.proj(e)[:, :, None, None])
        return self.out(h)[:, :, 1:3, 1:3].mean((2, 3))


def _probe() -> Probe:
    g = torch.Generator().manual_seed(0)
    return Probe(torch.randint(1, STEPS, (6, 1), generator=g), additional_forward_args=(torch.rand(6, 1, 4, 4, generator=g),))


@pytest.mark.parametrize("table", [False, True], ids=["sinusoidal", "embedding"])
def test_the_refusal_of_gradient_methods_names_a_way_the_model_takes(table):
    torch.manual_seed(0)
    model = TimestepDenoiser(table).eval()
    with pytest.raises(ValueError) as caught:
        CaptumBaseline(baseline=0).validate(model, _probe())
    message = str(caught.value)
    assert "bert" not in message
    if table:
        assert "input_layer='temb'" in message
        way_out = CaptumBaseline(baseline=0, methods=("LayerIntegratedGradients",), input_layer="temb")
    else:
        assert "TimestepDenoiser holds no nn.Embedding" in message
        assert "methods=('FeatureAblation', 'ShapleyValueSampling')" in message
        way_out = CaptumBaseline(baseline=0, methods=("FeatureAblation", "ShapleyValueSampling"))
    way_out.validate(model, _probe())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = way_out.run(model, _probe())
    assert all(torch.isfinite(v).all() for v in result.maps.values())
    # one group (the timestep): the causal effect is out(t) - out(t := 0), by hand
    with torch.no_grad():
        probe = _probe()
        t, (x_t,) = probe.inputs, probe.additional_forward_args
        hand = (model(t, x_t) - model(torch.zeros_like(t), x_t))[:, 0]
    torch.testing.assert_close(result.maps["causal"].reshape(-1), hand)
