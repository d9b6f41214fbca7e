"""The deletion/insertion figure's legend recomputed each AUC from the drawn mean curve over the mean
fractions, which with padding (each sample's fractions of its own real tokens) is not the audit's
AUC, the mean of each sample's own area: a padded token model's legend and its deletion_auc scalar
disagreed. The legend now shows the audit's areas; checked against a hand-computed AUC."""

import torch
from torch import nn

from lightning_causal.audits import CaptumBaseline, CompareSettings
from lightning_causal.audits.base import Probe
from lightning_causal.reporting.tensorboard import _curve_figure

LENGTHS = [8, 3, 5, 2, 7, 4]


class Additive(nn.Module):
    """Class 1's logit: the sum of a weight per real token (pad id 0 weighs 0); class 0's: 0."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.linspace(0.1, 2.0, 20) ** 1.5 * (torch.arange(20) > 0))

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        z = (self.w[ids] * attention_mask).sum(1)
        return torch.stack([torch.zeros_like(z), z], 1)


def _probe() -> Probe:
    g = torch.Generator().manual_seed(0)
    ids = torch.stack([torch.randperm(19, generator=g)[:8] + 1 for _ in LENGTHS])  # distinct tokens per row
    mask = torch.zeros(len(LENGTHS), 8, dtype=torch.long)
    for i, n in enumerate(LENGTHS):
        mask[i, :n] = 1
        ids[i, n:] = 0
    return Probe(ids, None, {"attention_mask": mask})


def _hand_deletion_auc(model: Additive, probe: Probe) -> float:
    """Each row's real tokens removed largest weight first, k_s = round(s G_n / S) of them at step s
    (S = the longest row), the area over the fractions k_s / G_n; the mean of the rows' areas."""
    steps, areas = max(LENGTHS), []
    for row, n in zip(probe.first.tolist(), LENGTHS):
        w = sorted((float(model.w[t].detach()) for t in row[:n]), reverse=True)
        ks = [round(s * n / steps) for s in range(steps + 1)]
        fr, ys = [k / n for k in ks], [sum(w) - sum(w[:k]) for k in ks]
        areas.append(sum((fr[i + 1] - fr[i]) * (ys[i + 1] + ys[i]) / 2 for i in range(steps)))
    return sum(areas) / len(areas)


def test_the_legend_shows_the_audits_area_of_a_padded_probe():
    model, probe = Additive(), _probe()
    r = CaptumBaseline(methods=["FeatureAblation"], baseline=0, target=1, settings=CompareSettings(score="raw")).run(model, probe)
    expected = _hand_deletion_auc(model, probe)
    assert abs(r.scalars["deletion_auc"] - expected) < 1e-5
    legend = [t.get_text() for t in _curve_figure(r, "deletion", r.curves["deletion"]).axes[0].get_legend().get_texts()]
    assert legend[0] == f"causal (AUC {expected:.3g})"
    assert legend[1] == f"FeatureAblation (AUC {r.scalars['compare/FeatureAblation/deletion_auc']:.3g})"
