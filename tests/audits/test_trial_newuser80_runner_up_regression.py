"""CounterfactualAudit(towards="runner_up") on a quantile regressor (outputs [N, Q] of quantiles 0.1, 0.5, 0.9,
probe labels the real-valued targets) ran without a word: the largest of the quantiles is the 0.9 quantile on every
sample, and the audit reported success_rate 1.0 for "flipping" it to the median, a quantile crossing, as if the
model had decided a class. towards="label" refuses such a probe as a regression; runner_up, which needs no labels,
now warns where the probe's labels are a regression target and the explained outputs are the model's own (a key or an
index, not a callable `output=`, which is taken as given: the threshold's two classes), and the card says so."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import CounterfactualAudit, Probe


class Quantiles(nn.Module):  # three monotone quantiles of y given x: q0.1 <= q0.5 <= q0.9 on every row
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.fc(x)
        return torch.cat([m - 1.0, m, m + 1.0], 1)


def _probe() -> Probe:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 4, generator=g)
    return Probe(x, 2.0 * x[:, 0] + torch.randn(32, generator=g))  # real-valued targets


def test_runner_up_of_a_quantile_regression_is_warned_and_noted() -> None:
    torch.manual_seed(0)
    audit = CounterfactualAudit(towards="runner_up", max_samples=2, name="cf")
    with pytest.warns(UserWarning, match=r"real-valued \[32\] \(a regression\?\).*output 2 is the largest on every probe"):
        result = audit.run(Quantiles(), _probe())
    assert any("a regression" in note for note in result.meta["notes"])


def test_runner_up_of_threshold_classes_or_without_labels_says_nothing() -> None:
    torch.manual_seed(0)
    probe = _probe()
    threshold = CounterfactualAudit(towards="runner_up", max_samples=2,
                                    output=lambda out: torch.stack([out[:, 1] - 0.0, 0.0 - out[:, 1]], 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        threshold.run(Quantiles(), probe)  # the documented threshold's two classes: taken as given
        CounterfactualAudit(towards="runner_up", max_samples=2).run(Quantiles(), Probe(probe.inputs, None))
        classes = Probe(probe.inputs, torch.arange(32) % 3)  # a classifier's integer labels
        CounterfactualAudit(towards="runner_up", max_samples=2).run(Quantiles(), classes)
