"""Review of docsuser7's figure words (git diff 6c52889e): are they true for every configuration?"""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal import InputEffectAudit
from lightning_causal.audits import Probe
from lightning_causal.reporting.tensorboard import TensorBoardRenderer


class _Writer:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _figures(monkeypatch, results, inputs=None):
    figures = {}
    monkeypatch.setattr(TensorBoardRenderer, "_figure", staticmethod(lambda writer, tag, fig, step: figures.update({tag: fig})))
    TensorBoardRenderer().render(_Writer(), 0, results, inputs)
    return figures


class _Pixels(nn.Module):
    """f = w . x / 255 of a uint8 image [N, 1, 2, 2] (one output): δ_g = w_g x_g / 255 at the baseline pixel value 0."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.tensor([1.0, -2.0, 0.5, 4.0], dtype=torch.float64)

    def forward(self, x):
        return (x.flatten(1).double() / 255 @ self.w).unsqueeze(1)


def test_a_uint8_images_baseline_is_a_pixel_value_not_an_id(monkeypatch):
    # uint8 pixels are values: the note said "against the group set to id 0", the words of a token id
    x = torch.tensor([[[[255, 51], [0, 102]]], [[[10, 20], [30, 40]]]], dtype=torch.uint8)
    r = InputEffectAudit(patch_size=1, baseline=0, ace_values=None).run(_Pixels(), Probe(x))
    hand = x.flatten(1).double() / 255 * torch.tensor([1.0, -2.0, 0.5, 4.0], dtype=torch.float64)  # w_g (x_g − 0) / 255
    assert torch.allclose(r.maps["effect"].flatten(1).double(), hand)
    assert r.meta["baseline"] == "0"
    fig = _figures(monkeypatch, [r], x)["causal/input_effect/maps/sample_0"]
    notes = [" ".join(t.get_text().split()) for t in fig.texts if t is not fig._suptitle]
    assert notes == ["red: raises the output against the group set to 0, blue: lowers it"]
