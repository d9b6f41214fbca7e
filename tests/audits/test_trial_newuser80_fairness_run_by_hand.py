"""FairnessAudit checked what its outputs are (a continuous distribution's moments, an embedding) in `validate` only,
which the callback and `audit_model` call but `audit.run(model, probe)` by hand does not: a heteroscedastic regressor
returning `Normal(mean [N, 2], std)` read through `output="mean"` got cf_flip_rate and positive rates of "the largest
coordinate of the mean" without a word, and an embedding's softmax (cf_flip_rate 0.31 of its largest coordinate) was
reported as class probabilities; the callback refuses the latter at set-up. `run` now checks them too."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal

from lightning_causal.audits import FairnessAudit, Probe
from lightning_causal.causal import AttributeFlip


class GaussianRegressor(nn.Module):  # two real-valued targets: Normal(mean [N, 2], std [N, 2])
    def __init__(self) -> None:
        super().__init__()
        self.mean, self.log_std = nn.Linear(4, 2), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> Normal:
        return Normal(self.mean(x), self.log_std(x).exp())


class Embedder(nn.Module):  # rows of unit norm
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.fc(x), dim=1)


def _x() -> torch.Tensor:
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
    x[:, 3] = (x[:, 3] > 0).float()
    return x


def test_a_distributions_means_read_by_hand_are_warned_of() -> None:
    torch.manual_seed(0)
    audit = FairnessAudit(AttributeFlip(3), sensitive=3, output="mean")
    with pytest.warns(UserWarning, match=r"FairnessAudit .*the Normal's mean, a continuous distribution"):
        audit.run(GaussianRegressor(), Probe(_x()))


def test_an_embedding_run_by_hand_is_refused_as_at_set_up() -> None:
    torch.manual_seed(0)
    probe = Probe(_x(), torch.arange(32) % 3)
    with pytest.raises(ValueError, match=r"outputs are an embedding \[1, 8\]"):
        FairnessAudit(AttributeFlip(3), sensitive=3).run(Embedder(), probe)


def test_a_classifier_run_by_hand_says_nothing() -> None:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = FairnessAudit(AttributeFlip(3), sensitive=3).run(nn.Linear(4, 3), Probe(_x(), torch.arange(32) % 3))
    assert result.scalars["cf_changed"] == 1.0
