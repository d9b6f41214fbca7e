"""newuser50 trial: the layer map of a siamese encoder (one module applied to both halves of the input) reads the
module at its last call, the second half's, and says so only in a console warning: the TensorBoard figure, the text
card and the report showed ``enc`` as if it were the encoder of both inputs. The map's ``meta["last_call"]`` now holds
each such layer with its calls per pass, and the audit's notes and the figure's note name them."""

from __future__ import annotations

import warnings

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from torch import nn

from lightning_causal.audits import LayerMapAudit, Probe
from lightning_causal.causal import layer_causal_map
from lightning_causal.reporting.layer_map_figures import layer_map_figure


class _Siamese(nn.Module):  # one encoder for both halves of x [N, 8]
    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Linear(4, 3)
        self.head = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.enc(x[:, :4]), self.enc(x[:, 4:])], 1))


def _model_and_probe() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    return _Siamese().double().eval(), torch.randn(16, 8, dtype=torch.float64)


def test_the_map_reads_the_last_call_and_says_so_in_its_meta() -> None:
    model, x = _model_and_probe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lm = layer_causal_map(model, x)  # one group per element, baseline 0
    assert lm.meta["last_call"] == {"enc": 2}
    # by hand: the last call reads x[:, 4:]; do(x_g := 0) for g < 4 leaves it, for g >= 4 moves it by -W[:, g - 4] x_g
    w = model.enc.weight.detach()
    h = model.enc(x[:, 4:]).detach()
    moves = torch.cat([torch.zeros(4, 16, dtype=x.dtype), (w.norm(dim=0)[:, None] * x[:, 4:].T.abs())])  # [G, N] ||Δh||
    expected = moves.mean() / h.norm(dim=1).mean()
    assert torch.allclose(lm.response[lm.layers.index("enc")], expected, rtol=1e-9)


def test_the_audit_notes_and_the_figure_name_the_layer_read_at_its_last_call() -> None:
    model, x = _model_and_probe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = LayerMapAudit().run(model, Probe(x))
    assert any("read at their last call only" in n and "enc (up to 2 calls a pass on the probe)" in n for n in result.meta["notes"])
    fig = layer_map_figure(result.graphs["layer_map"])
    FigureCanvasAgg(fig).draw()
    text = " ".join(" ".join(t.get_text() for ax in fig.axes for t in ax.texts).split())
    assert "read at the last of their calls per pass: enc (up to 2 calls a pass on the probe)" in text


def test_a_layer_run_once_gets_no_such_note() -> None:
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)).double().eval()
    result = LayerMapAudit().run(model, Probe(torch.randn(16, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))))
    assert result.graphs["layer_map"]["meta"]["last_call"] == {}
    assert not any("last call" in n for n in result.meta.get("notes", []))
