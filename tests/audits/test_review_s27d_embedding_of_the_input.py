"""CaptumBaseline's refusal of gradient methods on integer inputs names an ``input_layer=`` for Captum's layer
methods (7752eee8: the model's own first nn.Embedding). A model of several embeddings (a text denoiser
``forward(tokens, t)`` whose timestep table is registered first; a class-conditional denoiser that reads its
timesteps through a sinusoidal embedding and its class through a table) was told to use the embedding of another
input: LayerIntegratedGradients on it attributes to the timesteps or the class, not to the explained input. The
refusal names the embedding that reads the explained input, or perturbation methods where none does (review of
7752eee8)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lightning_causal import CaptumBaseline
from lightning_causal.audits import Probe

G = torch.Generator().manual_seed(0)
TOKENS = torch.randint(0, 50, (6, 5), generator=G)
STEPS = torch.randint(0, 20, (6,), generator=G)


class TextDenoiser(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.temb = nn.Embedding(20, 8)  # registered first
        self.tok = nn.Embedding(50, 8)
        self.out = nn.Linear(8, 1)

    def forward(self, tokens: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.out(self.tok(tokens).mean(1) + self.temb(t))


class ClassConditional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cemb = nn.Embedding(50, 8)
        self.out = nn.Linear(8, 1)

    def forward(self, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        freqs = torch.exp(-math.log(1000.0) * torch.arange(4) / 4)
        angles = t.float().reshape(-1, 1) * freqs  # t [N] or a column [N, 1]
        return self.out(torch.cat([angles.sin(), angles.cos()], 1) + self.cemb(c).mean(1))


class ClassFirst(nn.Module):
    """The same network given the class ids first: ``forward(c, t)``."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = ClassConditional()

    def forward(self, c: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.inner(t, c)


def _refusal(model: nn.Module, probe: Probe) -> str:
    with pytest.raises(ValueError) as caught:
        CaptumBaseline(baseline=0).validate(model.eval(), probe)
    return str(caught.value)


def test_the_tokens_are_told_of_the_embedding_that_reads_them():
    message = _refusal(TextDenoiser(), Probe(TOKENS, additional_forward_args=(STEPS,)))
    assert "input_layer='tok'" in message and "temb" not in message


def test_timesteps_read_through_a_sinusoidal_embedding_are_told_of_perturbation_methods():
    message = _refusal(ClassConditional(), Probe(STEPS[:, None], additional_forward_args=(TOKENS,)))  # a column: Captum's
    assert "cemb" not in message
    assert "ClassConditional holds no nn.Embedding that reads the explained input" in message
    assert "methods=('FeatureAblation', 'ShapleyValueSampling')" in message
    message = _refusal(ClassFirst(), Probe(TOKENS, additional_forward_args=(STEPS,)))  # the class ids explained
    assert "input_layer='inner.cemb'" in message


def test_the_layer_named_attributes_to_the_explained_input():
    """The way out the refusal names runs, and its attributions move with the tokens, not the timesteps."""
    torch.manual_seed(0)
    model = TextDenoiser().eval()
    message = _refusal(model, Probe(TOKENS, additional_forward_args=(STEPS,)))
    layer = message.split("input_layer=")[1].strip("')\"")
    audit = CaptumBaseline(baseline=0, methods=("LayerIntegratedGradients",), input_layer=layer)
    audit.validate(model, Probe(TOKENS, additional_forward_args=(STEPS,)))
    scores = audit.run(model, Probe(TOKENS, additional_forward_args=(STEPS,))).maps
    assert any(v.abs().sum() > 0 for k, v in scores.items() if k != "causal")


class CastingReader(nn.Module):
    """int32 ids cast to int64 before the lookup (a copy, no view of the input), a timestep table beside."""

    def __init__(self) -> None:
        super().__init__()
        self.temb = nn.Embedding(20, 8)
        self.tok = nn.Embedding(50, 8)
        self.out = nn.Linear(8, 1)

    def forward(self, tokens: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.out(self.tok(tokens.long()).mean(1) + self.temb(t))


def test_ids_the_model_casts_before_the_lookup_are_told_of_their_embedding():
    message = _refusal(CastingReader(), Probe(TOKENS.int(), additional_forward_args=(STEPS,)))
    assert "input_layer='tok'" in message and "temb" not in message
