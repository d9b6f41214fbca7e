"""Review of newuser121's ``_every_call_moved`` (prefix_cache._check_trial_pass): tuple-returning layers called many
times whose first call's element 0 moves the output by less than the trial pass's tolerance, or not at all, beside
the chunked GRU of test_newuser121_streaming_state. Both were refused for "using another element" before f70f690e;
a unit's effect must equal a hand hook loop that sets it at every call."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.causal import unit_effects

H = 5


def _hand(model: nn.Module, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Zero unit u of element 0 at every call of ``layer``, rerun: the predicted class's logit's change."""
    with torch.no_grad():
        base = model(x)
        t = base.argmax(1, keepdim=True)
        effects = []
        for u in range(H):
            def zero(_m, _i, out, u=u):  # noqa: ANN001, ANN202
                h = out[0].clone()
                h[..., u] = 0
                return (h, *out[1:])

            handle = layer.register_forward_hook(zero)
            try:
                effects.append((base - model(x)).gather(1, t)[:, 0])
            finally:
                handle.remove()
    return torch.stack(effects, 1)


class CellLoop(nn.Module):
    """An LSTMCell run once per step over 100 steps: the first step's h hardly reaches the last step's."""

    def __init__(self) -> None:
        super().__init__()
        self.cell, self.head = nn.LSTMCell(3, H), nn.Linear(H, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hc = None
        for t in range(x.shape[1]):
            hc = self.cell(x[:, t], hc)
        return self.head(hc[0])


class SharedEncoderDecoder(nn.Module):
    """One LSTM as encoder (its (h, c) read, element 0 not) and as decoder (element 0 read)."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm, self.head = nn.LSTM(3, H, batch_first=True), nn.Linear(H, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, hc = self.lstm(x[:, :6])
        out, _ = self.lstm(x[:, 6:], hc)
        return self.head(out[:, -1])


def test_a_cell_looped_over_many_steps_is_intervened_at_every_step():
    torch.manual_seed(1)
    model, x = CellLoop().eval(), torch.randn(4, 100, 3)
    effects = unit_effects(model, x, "cell", unit_dim=-1)
    torch.testing.assert_close(effects, _hand(model, model.cell, x), rtol=0, atol=1e-6)
    assert effects.abs().max() > 0.01


def test_a_shared_encoder_decoder_layer_is_intervened_at_both_calls():
    torch.manual_seed(1)
    model, x = SharedEncoderDecoder().eval(), torch.randn(6, 12, 3)
    effects = unit_effects(model, x, "lstm", unit_dim=-1)
    torch.testing.assert_close(effects, _hand(model, model.lstm, x), rtol=0, atol=1e-6)
    assert effects.abs().max() > 0.01
