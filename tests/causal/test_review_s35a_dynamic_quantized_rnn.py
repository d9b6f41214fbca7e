"""Review of 38119a57 (float16 ``quantize_dynamic`` runs, int8 is refused): the float16 rule read a Linear's and an
RNN's weight dtype but not an RNN cell's (``weight_dtype``), and counted a dynamic RNN's ``PackedParameter`` modules
(``lstm._all_weight_values.0``, no dtype) as int8 layers, so a float16 ``LSTM``/``GRUCell`` model, whose rows do not
depend on their batch, was refused naming ``'rnn._all_weight_values.0'``; an int8 LSTM's refusal named that internal
beside the layer."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects


class _Recurrent(nn.Module):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.rnn = nn.LSTM(4, 8, batch_first=True) if kind == "lstm" else nn.GRUCell(4, 8)
        self.act = nn.Identity()
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        h = self.rnn(x)[0][:, -1] if self.kind == "lstm" else self.rnn(x[:, -1])
        return self.fc(self.act(h))


def _quantized(kind: str, dtype: torch.dtype) -> nn.Module:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notices
        return torch.ao.quantization.quantize_dynamic(_Recurrent(kind).eval(), {nn.LSTM, nn.GRUCell}, dtype=dtype)


@pytest.mark.parametrize("kind", ["lstm", "cell"])
def test_a_float16_recurrent_layer_runs_and_its_effects_equal_a_hand_loop(kind):
    q = _quantized(kind, torch.float16)
    x = torch.randn(8, 5, 4, generator=torch.Generator().manual_seed(1)) * torch.linspace(0.2, 4, 8)[:, None, None]
    with torch.no_grad():
        out = q(x)
        assert torch.equal(q(x[:1]), out[:1])  # a row alone and in its batch: the same
    effects = unit_effects(q, x, "act")
    t = out.argmax(1, keepdim=True)
    with torch.no_grad():
        for u in range(8):
            handle = q.act.register_forward_hook(lambda m, i, o, u=u: o.index_fill(1, torch.tensor([u]), 0.0))
            try:
                hand = (out.gather(1, t) - q(x).gather(1, t))[:, 0]
            finally:
                handle.remove()
            torch.testing.assert_close(effects[:, u], hand, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("kind", ["lstm", "cell"])
def test_an_int8_recurrent_layer_is_refused_naming_the_layer_not_its_packed_weights(kind):
    with pytest.raises(ValueError, match=r"dynamically quantized layers \('rnn'; ") as refusal:
        unit_effects(_quantized(kind, torch.qint8), torch.randn(4, 5, 4), "act")
    assert "_all_weight_values" not in str(refusal.value)
