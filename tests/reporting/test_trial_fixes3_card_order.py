"""Trial "fixes3": TensorBoard lists a run's cards sorted by tag, upper case before lower case, so the cards
of CaptumBaseline's methods (``maps/sample_0/IntegratedGradients``, ``histograms/mean_abs/Saliency``, the
drift of ``mean_abs/Saliency``) came before the ``causal`` card they are the baseline for. They are now filed
under ``compare/<method>`` (``maps/sample_0/compare/IntegratedGradients``), after it; the result's own keys
keep the method's name."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.audits import CaptumBaseline, Probe
from lightning_causal.audits.drift import vector_drift
from lightning_causal.reporting.figure_kinds import map_figures
from lightning_causal.reporting.map_data import MapData
from lightning_causal.reporting.tensorboard import TensorBoardRenderer, scalar_tags

METHODS = ("IntegratedGradients", "Saliency")


class _Tags:
    """A SummaryWriter that records the tags of what it is given."""

    def __init__(self) -> None:
        self.tags: list[str] = []

    def __getattr__(self, name: str):
        def add(tag=None, *args, **kwargs) -> None:
            if name.startswith("add_") and isinstance(tag, str):
                self.tags.append(tag)
        return add


def _run() -> tuple[list[str], torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 6), nn.Tanh(), nn.Linear(6, 3)).eval()
    x = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    audit = CaptumBaseline(methods=METHODS, patch_size=2, top_k=2)
    result = audit.run(model, Probe(x))
    earlier = {k: v.flip(0) for k, v in result.vectors.items()}  # an earlier audit's vectors
    result.scalars.update(vector_drift(earlier, result.vectors))  # as the callback does from the second audit on
    writer = _Tags()
    TensorBoardRenderer(max_samples=1).render(writer, 1, [result], x)
    return writer.tags + list(scalar_tags(result)), result


def test_the_causal_card_comes_first_in_tensorboards_order():
    tags, result = _run()
    base = "causal/captum_baseline/"
    for family in ("maps/sample_0/", "histograms/mean_abs/", "drift/mean_abs/"):
        cards = sorted(t for t in tags if t.startswith(base + family))
        assert cards[0].startswith(base + family + "causal"), cards  # before: .../IntegratedGradients first
        assert len(cards) > len(METHODS)
    names = set(METHODS)
    for family in ("maps/sample_0/", "histograms/mean_abs/"):  # each method's card still named after it
        assert {t[len(base + family + "compare/"):] for t in tags if t.startswith(base + family + "compare/")} == names
    assert sorted(tags).index(base + "maps/sample_0/causal") < sorted(tags).index(base + "maps/sample_0/compare/Saliency")
    # the result keeps the methods' names: the tags only are filed
    assert set(result.maps) == {"causal", *names} and "mean_abs/Saliency" in result.vectors
    assert "drift/mean_abs/Saliency/spearman" in result.scalars


def test_sequence_and_token_cards_of_the_methods_are_filed_too():
    g = torch.Generator().manual_seed(0)
    meta = {"methods": ["IntegratedGradients", "Saliency"]}
    signal = torch.randn(2, 1, 32, generator=g)
    maps = {"causal": signal, "IntegratedGradients": 2 * signal, "Saliency": signal.abs()}
    tags = [t for t, _ in map_figures(MapData(signal, maps, "cb", meta, None, 1), "sequence")]
    assert tags == ["maps/sample_0/causal", "maps/sample_0/compare/IntegratedGradients", "maps/sample_0/compare/Saliency"]
    assert sorted(tags) == tags
    ids = torch.randint(1, 50, (1, 200), generator=g)  # several lines of tokens: one card per map
    scores = torch.randn(1, 200, generator=g)
    tokens = [t for t, _ in map_figures(MapData(ids, {"causal": scores, "Saliency": scores.abs(), "IntegratedGradients": scores},
                                                "cb", meta, None, 1), "tokens")]
    assert tokens == ["maps/sample_0/causal", "maps/sample_0/compare/Saliency", "maps/sample_0/compare/IntegratedGradients"]
