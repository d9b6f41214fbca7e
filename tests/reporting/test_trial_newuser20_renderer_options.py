"""Validation sweep (newuser20): TensorBoardRenderer(max_samples=0 or -1, bar_top=-1) was built;
a slice [:-1] draws every sample but the last, [:0] an empty figure."""

import pytest

from lightning_causal.reporting import TensorBoardRenderer


@pytest.mark.parametrize("kwargs, message", [
    ({"max_samples": 0}, r"`max_samples` to be a positive int but got 0"),
    ({"max_samples": -1}, r"`max_samples` to be a positive int but got -1"),
    ({"max_samples": 2.0}, r"`max_samples` .* got 2.0"),
    ({"bar_top": -1}, r"`bar_top` to be a positive int but got -1"),
])
def test_wrong_counts_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TensorBoardRenderer(**kwargs)


def test_valid_counts_are_kept():
    r = TensorBoardRenderer(max_samples=1, bar_top=3)
    assert (r.max_samples, r.bar_top) == (1, 3)
