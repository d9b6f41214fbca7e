"""The probe check's written-state rule for the tensors of a helper object (a ``RunningMeanStd`` of tensors, not a
module) in a model that also draws from the global generator (MC dropout kept on): 74df340e refused such a helper
without draws, but a drawing model's first pass alone passes as noise where it wrote none of its modules' tensors, and
the helper's were not looked at there, so its statistics moved with every pass of the estimators, answered silently.
A helper whose tensors the forward only reads, or only writes, still passes beside the draws."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.causal import input_effects


class _Stats:
    """A plain object of tensors: ``kind`` "running" updated at every call and read (Stable Baselines' helper),
    "constant" only read, "monitor" only written."""

    def __init__(self, kind):
        self.kind, self.mean, self.last = kind, torch.full((3,), 0.5), torch.zeros(3)

    def __call__(self, x):
        if self.kind == "running":
            self.mean = 0.8 * self.mean + 0.2 * x.mean(0)
        if self.kind == "monitor":
            self.last = x.detach().mean(0)
            return x
        return x - self.mean


_Stats.__module__ = "my_policy"  # a user's class, as helper_objects takes it (a test module's is not this package's)


class _McPolicy(nn.Module):
    def __init__(self, kind):
        super().__init__()
        torch.manual_seed(0)
        self.stats, self.l1, self.l2 = _Stats(kind), nn.Linear(3, 16), nn.Linear(16, 2)

    def forward(self, x):
        return self.l2(F.dropout(self.l1(self.stats(x)).relu(), 0.1, training=True))


def _x() -> torch.Tensor:
    return torch.randn(20, 3, generator=torch.Generator().manual_seed(4)) * 2 + 1


def test_a_helper_statistic_written_and_read_beside_mc_dropout_is_refused():
    model = _McPolicy("running").eval()
    with pytest.raises(ValueError, match=r"wrote floating tensors of its own \(stats.mean\) in a pass of probe samples "
                                         r"\[0, 1\] alone, in eval mode, and reads them beside the random numbers"):
        input_effects(model, _x(), target=0)
    assert model.stats.mean.tolist() == [0.5, 0.5, 0.5]  # the check's passes left the statistic as it was


@pytest.mark.parametrize("kind", ["constant", "monitor"])
def test_a_helper_only_read_or_only_written_beside_mc_dropout_passes(kind):
    model = _McPolicy(kind).eval()
    effects = input_effects(model, _x(), target=0)
    assert effects.shape == (20, 3) and torch.isfinite(effects).all()
    assert model.stats.mean.tolist() == [0.5, 0.5, 0.5]
