"""The rounding warning's bound read the size of the explained output only (2dd752e7): the rounding of an SAE's
cancelling splice ``rec + (h - rec).detach()`` scales with the residual stream ``h``, and one large coordinate of it
(LLMs' massive activations), which the head's bias cancels, gave rounding effects of 58 epsilons of the output in
float32, reported as real (final_read_F F2). The bound now reads the size of what the forward rounds after the layer
(``rounded_size``: ``Σ|v · ∂f/∂v|`` over the tensors the later modules read); a small effect that is real on the same
residual stream is not warned of."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects
from lightning_causal.causal.effects.rounding_effects import rounded_size


class _Splice(nn.Module):
    """An SAE spliced into a residual stream of 8 whose coordinate 0 is ~300, read by the head and cancelled by its
    bias; ``cancel``: the error term computed from the latents it sets (true effect 0), else the latents reach the
    output, scaled by 1e-3 (a small real effect)."""

    def __init__(self, cancel: bool, big: float = 300.0) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.layer, self.enc, self.dec = nn.Linear(6, 8), nn.Linear(8, 16), nn.Linear(16, 8)
            self.latents, self.head = nn.Identity(), nn.Linear(8, 3)
        self.cancel = cancel
        with torch.no_grad():
            self.layer.bias[0] += big
            self.dec.bias[0] += big
            self.head.weight.mul_(20)
            self.head.bias -= self.head.weight[:, 0] * big

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.layer(x)
        rec = self.dec(self.latents(torch.relu(self.enc(h))))
        return self.head(rec + (h - rec).detach() if self.cancel else h + 1e-3 * (rec - self.dec.bias))


def _effects(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        effects = unit_effects(model, x, "latents", target=0)
    return effects, [str(w.message) for w in caught if "float rounding" in str(w.message)]


def _x() -> torch.Tensor:
    return torch.randn(32, 6, generator=torch.Generator().manual_seed(1))


def test_a_cancelling_splice_on_a_large_residual_coordinate_is_warned_of():
    model = _Splice(cancel=True).eval()
    effects, said = _effects(model, _x())
    largest, output = float(effects.abs().max()), float(model(_x())[:, 0].abs().max())
    assert largest > 4 * torch.finfo(torch.float32).eps * output  # beyond the output's rounding: silent before
    assert len(said) == 1 and "values rounded after the layer" in said[0]


def test_a_small_real_effect_on_the_same_residual_stream_is_not():
    model = _Splice(cancel=False).eval()
    effects, said = _effects(model, _x())
    assert not said
    exact = unit_effects(model.double(), _x().double(), "latents", target=0)  # the effects are real: float64 agrees
    torch.testing.assert_close(effects.double(), exact, rtol=0.05, atol=0.01 * float(exact.abs().max()))


def test_rounded_size_reads_the_values_the_later_modules_round():
    head = nn.Linear(2, 1)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[3.0, -1.0]]))
    h = torch.tensor([[100.0, 2.0], [1.0, 1.0]])
    assert rounded_size(head, lambda edit: head(edit(h))[:, 0]) == pytest.approx(302.0)  # the larger row's |v·∂f/∂v|
