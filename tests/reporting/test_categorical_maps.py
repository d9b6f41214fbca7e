"""Categorical codes ``[N, D]`` (integer columns with feature names) drawn as tabular bars in
TensorBoard, not as token strips."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit, Probe
from lightning_causal.reporting.figure_kinds import MapData, infer_kind, map_figures
from lightning_causal.reporting.tensorboard import TensorBoardRenderer


class _Codes(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embs = nn.ModuleList(nn.Embedding(c, 2) for c in (4, 3, 2))
        self.head = nn.Linear(6, 2)

    def forward(self, codes):
        return self.head(torch.cat([emb(codes[:, i]) for i, emb in enumerate(self.embs)], 1))


class _Writer:
    def __init__(self) -> None:
        self.images: dict[str, object] = {}

    def add_image(self, tag, img, step, dataformats="HWC"):  # noqa: ANN001
        self.images[tag] = img

    def __getattr__(self, name):  # histograms, text, layout, flush
        return lambda *a, **k: None


def test_named_categorical_codes_are_drawn_as_tabular_bars_with_their_names():
    """With feature names, codes [[0, 1, 0], ...] were drawn as token strips "0 1": the trailing
    code of effect 0 left out as padding, and no column named."""
    codes = torch.tensor([[0, 1, 0], [3, 0, 0], [1, 2, 1], [0, 2, 1]])
    names = ["colour", "size", "sex"]
    result = InputEffectAudit(baseline=0, feature_names=names, ace_values=None).run(_Codes(), Probe(codes))
    writer = _Writer()
    TensorBoardRenderer().render(writer, 0, [result], codes)
    assert sorted(t for t in writer.images if "/maps/" in t) == ["causal/input_effect/maps/top_features"]
    (tag, fig), = map_figures(MapData(codes, dict(result.maps), result.audit, result.meta))
    labels = {t.get_text() for ax in fig.axes for t in ax.get_yticklabels()}
    assert tag == "maps/top_features" and set(names) <= labels
    assert infer_kind(codes) == "tokens" and infer_kind(codes, {"feature_names": names, "vocabulary": ["a"]}) == "tokens"
