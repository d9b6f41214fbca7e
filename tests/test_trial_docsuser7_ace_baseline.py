"""ACE's baseline (docsuser7: each method read against its paper). Chattopadhyay et al. 2019 subtract
baseline_g = E_{α∼x_g}[μ_g(α)], the interventional curve's mean over the feature's own distribution;
average_causal_effect subtracts the mean over its grid of K values, which leaves out the tails of the
default quantile grid (5% to 95%). The docstring and docs/methods.md did not say so; they do now, and
the numbers below are the ones they describe."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
import torch
from torch import nn

from lightning_causal import average_causal_effect, interventional_expectations


class _Square(nn.Module):
    """f(x) = x_0², whatever the other columns hold: μ_0(α) = α² for every probe."""

    def forward(self, x):
        return x[:, :1] ** 2


def _probe() -> torch.Tensor:
    x = torch.zeros(101, 2, dtype=torch.float64)
    x[:, 0] = torch.arange(101, dtype=torch.float64) / 100  # 0, 0.01, ..., 0.99 and a tail value 10: its p-quantile
    x[100, 0] = 10.0  # is p for p <= 0.99
    x[:, 1] = torch.linspace(-1, 1, 101, dtype=torch.float64)
    return x


def test_the_quantile_grid_is_centred_on_its_own_mean_not_on_the_features_distribution():
    x, mask = _probe(), torch.tensor([0, 1])
    levels = torch.linspace(0.05, 0.95, 8, dtype=torch.float64)  # the default grid's probabilities = its values here
    ace = average_causal_effect(_Square(), x, mask, "quantiles", target=0)
    grid_mean = float((levels**2).mean())  # (1/8) sum of p²: 0.336786
    assert grid_mean == pytest.approx(0.336786, abs=1e-6)
    assert torch.allclose(ace[0], levels**2 - grid_mean)
    # the paper's: E over the probe's x_0 of μ_0(x_0) = (sum_k (k/100)² + 10²) / 101 = (32.835 + 100) / 101, the tail in it
    paper_baseline = float((x[:, 0] ** 2).mean())
    assert paper_baseline == pytest.approx(132.835 / 101, abs=1e-9)
    mu, values = interventional_expectations(_Square(), x, mask, "quantiles", target=0)  # the uncentred curve
    assert torch.allclose(values[0], levels) and torch.allclose(mu[0] - paper_baseline, ace[0] + (grid_mean - paper_baseline))
    assert torch.allclose(ace[1], torch.zeros(8, dtype=torch.float64))  # x_1 unread: a flat curve


def test_the_standard_normal_figure_the_docs_quote():
    levels = [0.05 + 0.9 * k / 7 for k in range(8)]
    z = torch.tensor([statistics.NormalDist().inv_cdf(p) for p in levels], dtype=torch.float64)
    x = torch.zeros(3, 1, dtype=torch.float64)
    ace = average_causal_effect(_Square(), x, torch.tensor([0]), z.unsqueeze(0), target=0)
    assert float((z**2).mean()) == pytest.approx(0.958, abs=5e-4)  # the paper's baseline E[x²] = 1
    assert torch.allclose(ace[0], z**2 - (z**2).mean())


def test_the_docstring_and_the_methods_page_say_so():
    doc = " ".join(average_causal_effect.__doc__.split())
    assert "departs from the paper" in doc and "E_{α∼x_g}[μ_g(α)]" in doc and "5% to 95%" in doc and "0.958" in doc
    page = " ".join((Path(__file__).parents[1] / "docs" / "methods.md").read_text(encoding="utf-8").split())
    assert "*Departure from the paper: the baseline.*" in page and "0.958 where the paper's is 1" in page
