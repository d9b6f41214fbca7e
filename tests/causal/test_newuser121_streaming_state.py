"""Streaming models (newuser121 trial): a state kept on the module from call to call and reset at each utterance (a
GRU's hidden state, a causal convolution's left context), and a layer run chunk by chunk.

Before, a state read whatever the batch (``self.gru(chunk, self.h)``) left by a pass of 8 rows made the pass of probe
samples 0 and 1 alone fail with torch's "Expected hidden size (1, 2, 4), got [1, 8, 4]", refused with advice about
graph neural networks and prototypical networks that named neither the state nor a way out; and a GRU called once per
chunk, its output read at the last chunk only, was refused by every unit audit for "using another element" of its
tuple (the trial pass moved the first call's output only, which the model does not read)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects, unit_effects

T, F, H, CH = 12, 3, 4, 4
STEPS = torch.arange(T).reshape(T, 1).expand(T, F)


class Stream(nn.Module):
    """A GRU over one chunk, from the state the previous call left, whatever its rows; ``reset_state()`` per utterance."""

    def __init__(self) -> None:
        super().__init__()
        self.gru, self.head = nn.GRU(F, H, batch_first=True), nn.Linear(H, 2)
        self.reset_state()

    def reset_state(self) -> None:
        self.h = None

    def forward(self, chunk: torch.Tensor) -> torch.Tensor:
        out, h = self.gru(chunk, self.h)
        self.h = h.detach()
        return self.head(out[:, -1])


class LeftContext(nn.Module):
    """A causal convolution streamed chunk by chunk: its left context a buffer, read whatever the rows."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.head = nn.Conv1d(F, 5, 3), nn.Linear(5, 2)
        self.register_buffer("ctx", torch.zeros(1, F, 2), persistent=False)

    def forward(self, chunk: torch.Tensor) -> torch.Tensor:  # [N, T, F]
        x = torch.cat([self.ctx.expand(chunk.shape[0], -1, -1) if self.ctx.shape[0] == 1 else self.ctx,
                       chunk.transpose(1, 2)], -1)
        self.ctx = x[..., -2:].detach()
        return self.head(torch.relu(self.conv(x)).mean(-1))


class Utterance(nn.Module):
    """The whole utterance, chunk by chunk from a fresh state: what a streaming model's ``audited_module`` returns."""

    def __init__(self, stream: Stream) -> None:
        super().__init__()
        self.stream = stream

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.stream.reset_state()
        for chunk in x.split(CH, 1):
            logits = self.stream(chunk)
        return logits


@pytest.mark.parametrize("model", [Stream, LeftContext])
def test_a_state_left_by_another_batch_is_named_with_the_way_out(model):
    torch.manual_seed(0)
    m = model().eval()
    x = torch.randn(8, CH, F)
    m(x)  # a state of 8 rows, read by every pass after, whatever its rows
    with pytest.raises(ValueError, match="failed where the batch of 8 ran") as err:
        input_effects(m, x, STEPS[:CH])
    said = str(err.value)
    state = "h [1, 8, 4]" if model is Stream else "ctx [8, 3, 2]"
    assert f"keeps tensors besides its parameters that this pass of 2 row(s) may read, of a size other than its rows that the error names: {state}" in said
    assert "`audited_module`" in said and "h0 = self.h if self.training else None" in said
    assert "graph neural network" not in said and "prototypical" not in said  # the hints of other models


def _hand_unit_effects(model: nn.Module, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Zero unit u of the layer's output (element 0) at every call, rerun, the predicted class's logit's change."""
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


def test_a_layer_run_chunk_by_chunk_is_intervened_at_every_call():
    torch.manual_seed(0)
    stream = Stream()
    model = Utterance(stream).eval()
    x = torch.randn(6, T, F)
    effects = unit_effects(model, x, "stream.gru", unit_dim=-1)  # refused before: "uses another element"
    torch.testing.assert_close(effects, _hand_unit_effects(model, stream.gru, x), rtol=0, atol=1e-6)
    assert effects.abs().max() > 0.01


def test_a_layer_whose_first_element_no_call_reads_is_still_refused():
    class LastState(nn.Module):  # every chunk's h_n carried, the head reads h_n: element 0 is never read
        def __init__(self) -> None:
            super().__init__()
            self.gru, self.head = nn.GRU(F, H, batch_first=True), nn.Linear(H, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = None
            for chunk in x.split(CH, 1):
                _, h = self.gru(chunk, h)
            return self.head(h[0])

    torch.manual_seed(0)
    with pytest.raises(ValueError, match="did not change when element 0 did"):
        unit_effects(LastState().eval(), torch.randn(6, T, F), "gru", unit_dim=-1)


def test_a_state_read_where_the_batch_matches_is_refused_with_the_streaming_way_out():
    class Matching(Stream):  # reads the state only where its rows are the pass's
        def forward(self, chunk: torch.Tensor) -> torch.Tensor:
            h0 = self.h if self.h is not None and self.h.shape[1] == chunk.shape[0] else None
            out, h = self.gru(chunk, h0)
            self.h = h.detach()
            return self.head(out[:, -1])

    torch.manual_seed(0)
    m = Matching().eval()
    x = torch.randn(8, CH, F)
    m(x)
    with pytest.raises(ValueError, match=r"reads a state it keeps from earlier calls: h") as err:
        unit_effects(m, x, "gru", unit_dim=-1)
    assert "a model run chunk by chunk (streaming)" in str(err.value) and "`audited_module`" in str(err.value)
