"""A 1-D CNN concatenating two Conv1d outputs in plain code ([N, 6, L], channels first) and reading them with an
nn.Linear over the time steps (a DLinear/TCN-style temporal projection per channel) or an nn.LayerNorm([C, L]) was
refused as features-last by the consumer rule of 5c16dfba, and its advised `unit_dim=-1` silently gave the 10 time steps
(final_read_F F1). Convolutions' outputs of the site input's rank, rows and trailing dimensions are the pieces of a
channel concatenation: channels first. A LayerNorm over several dimensions says nothing of the layout. The ViT's
`pos_drop` (its convolution's output is of rank 4) stays refused (tests/causal/test_mends_s41d_consumer_layout.py)."""

import torch
from torch import nn

from lightning_causal.causal import unit_effects


class ConvLin(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv1d(4, 3, 3), nn.Conv1d(4, 3, 3)
        self.act, self.proj, self.fc = nn.ReLU(), nn.Linear(10, 1), nn.Linear(6, 2)

    def forward(self, x):
        return self.fc(self.proj(self.act(torch.cat([self.a(x), self.b(x)], 1))).squeeze(-1))


class ConvLN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv1d(4, 3, 3), nn.Conv1d(4, 3, 3)
        self.act, self.ln, self.fc = nn.ReLU(), nn.LayerNorm([6, 10]), nn.Linear(60, 2)

    def forward(self, x):
        return self.fc(self.ln(self.act(torch.cat([self.a(x), self.b(x)], 1))).flatten(1))


class ReshapedLN(nn.Module):
    """No convolution: a linear layer's 60 features viewed as [N, 6, 10] in plain code, read by LayerNorm([6, 10])."""

    def __init__(self) -> None:
        super().__init__()
        self.lin, self.act, self.ln, self.fc = nn.Linear(4, 60), nn.ReLU(), nn.LayerNorm([6, 10]), nn.Linear(60, 2)

    def forward(self, x):
        return self.fc(self.ln(self.act(self.lin(x).view(-1, 6, 10))).flatten(1))


def _hand_channel_effects(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """f_0(x) - f_0(x | do(channel c of `act` := 0)) for each channel c, by hand with a hook."""
    with torch.no_grad():
        clean = model(x)[:, 0]
    effects = []
    for c in range(6):
        def patch(_m, _i, o, c=c):
            o = o.clone()
            o[:, c] = 0
            return o
        handle = model.act.register_forward_hook(patch)
        with torch.no_grad():
            effects.append(clean - model(x)[:, 0])
        handle.remove()
    return torch.stack(effects, 1)


def test_concatenated_convolution_channels_read_over_time_keep_their_channels():
    torch.manual_seed(0)
    x = torch.randn(8, 4, 12, generator=torch.Generator().manual_seed(1))
    for model in (ConvLin().eval(), ConvLN().eval()):
        effects = unit_effects(model, x, "act", target=0)
        assert effects.shape == (8, 6)  # the 6 channels, not refused, not the 10 steps
        assert not torch.equal(effects, torch.zeros_like(effects))


def test_the_channel_effects_are_those_of_a_hand_intervention_on_each_channel():
    torch.manual_seed(0)
    model, x = ConvLin().eval(), torch.randn(8, 4, 12, generator=torch.Generator().manual_seed(1))
    ours, hand = unit_effects(model, x, "act", target=0), _hand_channel_effects(model, x)
    assert torch.allclose(ours, hand, atol=1e-6)


def test_a_layer_norm_over_several_dimensions_does_not_refuse_the_default():
    torch.manual_seed(0)
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
    assert unit_effects(ReshapedLN().eval(), x, "act", target=0).shape == (8, 6)
