"""The anomaly-index axis names the σ the index was divided by: 1.4826·MAD, or the mean-deviation fallback where MAD = 0."""

from __future__ import annotations

import pytest
import torch

from lightning_causal.audits import AuditResult
from lightning_causal.causal.backdoor.suspects import anomaly_scale, mad_anomaly_index
from tests.test_trial_docsuser7_figure_words import _figures


def _axis(monkeypatch, norms):
    index = mad_anomaly_index(norms)
    r = AuditResult("backdoor", curves={"anomaly_index": {"x": list(range(len(norms))), "anomaly_index": index.tolist()}},
                    meta={"anomaly_scale": anomaly_scale(norms)})
    return index, _figures(monkeypatch, [r])["causal/backdoor/curves/anomaly_index"].axes[0]


def test_an_axis_of_a_zero_mad_names_the_mean_deviation_it_was_scaled_by(monkeypatch):
    norms = torch.tensor([1.0, 5.0, 5.0, 5.0, 9.0], dtype=torch.float64)  # median 5, MAD 0; mean |v − 5| = 8 / 5
    index, ax = _axis(monkeypatch, norms)
    assert index[0].item() == pytest.approx(4 / (1.6 * (torch.pi / 2) ** 0.5), abs=1e-12)  # 1.9947, not 4 / (1.4826·0)
    assert ax.get_ylabel().split("\n") == ["anomaly index of the mask's L1 norm", "(σ = 1.2533·mean|v − med|: MAD = 0;",
                                           "> 0: below the median)"]
    assert anomaly_scale(torch.full((3,), 2.0)) == "1"  # every value the median: the index 0, divided by 1


def test_an_axis_of_a_nonzero_mad_names_the_mad(monkeypatch):
    _, ax = _axis(monkeypatch, torch.tensor([1.0, 10.0, 11.0, 12.0, 13.0], dtype=torch.float64))
    assert ax.get_ylabel() == "anomaly index of the mask's L1 norm\n(σ = 1.4826·MAD; > 0: below the median)"
