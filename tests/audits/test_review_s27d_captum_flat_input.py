"""CaptumBaseline on an input without a feature dimension, ``[N]`` (a denoiser's timesteps as drawn,
``torch.randint(0, T, (N,))``, or one float feature per sample): validate passed it, and the run failed in
Captum's wrapper with 'Expected argument `inputs` to be a tensor [N, ...] with N >= 1 and a feature dimension but
got [6]', an argument the user never passed (found by the review_s27d helper's left note). validate now refuses it at
set-up, naming the probe's input, its shape and the way out (a column ``[N, 1]``)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal import CaptumBaseline
from lightning_causal.audits import Probe


class Timesteps(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.temb = nn.Embedding(20, 4)
        self.out = nn.Linear(4, 1)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.temb(t)) + x.mean(1, keepdim=True)


G = torch.Generator().manual_seed(0)
T = torch.randint(0, 20, (6,), generator=G)
X = torch.rand(6, 3, generator=G)


@pytest.mark.parametrize("audit", [CaptumBaseline(baseline=0, methods=("FeatureAblation", "ShapleyValueSampling")),
                                   CaptumBaseline(baseline=0, methods=("LayerIntegratedGradients",), input_layer="temb")],
                         ids=["perturbation", "layer"])
def test_flat_integer_inputs_are_refused_at_validate_with_the_column_way_out(audit):
    with pytest.raises(ValueError) as caught:
        audit.validate(Timesteps().eval(), Probe(T, additional_forward_args=(X,)))
    message = str(caught.value)
    assert "the probe's input [6] of torch.int64" in message and "a column [N, 1]" in message
    assert "t[:, None]" in message


def test_flat_float_inputs_are_refused_at_validate():
    with pytest.raises(ValueError, match=r"the probe's input \[6\] of torch.float32"):
        CaptumBaseline(methods=("Saliency",)).validate(nn.Linear(1, 1), Probe(torch.rand(6)))
