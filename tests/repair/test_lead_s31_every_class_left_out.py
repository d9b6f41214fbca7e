"""A ``BackdoorSuppressionTerm(when_unflagged="top")`` (``trigger=None``) on a model whose every class is left out of
Neural Cleanse's comparison (one class the model predicts for every input, the others ruled out with ``-inf`` on every
input: a class-incremental model at its first task) suppressed the "most anomalous" class, a left-out class whose
reversed trigger measures nothing ("flag score nan, anomaly index nan"), and repaired towards it (second_s31a found it;
``repair/backdoor_setup.py``). With every class left out nothing is suppressed, whatever ``when_unflagged``, with a
warning naming why; a model with a class that can be compared still has its most anomalous class suppressed."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import BackdoorSuppressionTerm


class _OneSeen(nn.Module):
    def __init__(self, seen: list[bool]) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, len(seen)))
        self.register_buffer("seen", torch.tensor(seen))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).masked_fill(~self.seen, float("-inf"))


def _x() -> torch.Tensor:
    return torch.randn(32, 6, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("when_unflagged", ["top", "skip"])
def test_nothing_is_suppressed_where_every_class_is_left_out(when_unflagged: str) -> None:
    term = BackdoorSuppressionTerm(when_unflagged=when_unflagged, contrast=False, reverse_options={"steps": 20})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        term.setup(_OneSeen([True, False, False, False]), _x())
    assert term.detection.unattacked == [0] and term.detection.ruled_out == [1, 2, 3]
    assert term.triggers == []
    said = [str(w.message) for w in caught if "BackdoorSuppressionTerm" in str(w.message)]
    assert len(said) == 1 and "none can be compared: every class is left out" in said[0]
    assert "[0]" in said[0] and "[1, 2, 3]" in said[0] and "nothing is suppressed" in said[0]


def test_a_class_that_can_be_compared_is_still_suppressed_under_top() -> None:
    term = BackdoorSuppressionTerm(when_unflagged="top", contrast=False, reverse_options={"steps": 20})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        term.setup(_OneSeen([True, True, True, False]), _x())
    if term.detection.flagged:  # nothing to test about the unflagged path
        pytest.skip("a class was flagged on this model")
    top = term.detection.most_suspect
    assert top not in term.detection.left_out and [t.target for t in term.triggers] == [top]
    assert any("suppressing the most anomalous class" in str(w.message) for w in caught)
