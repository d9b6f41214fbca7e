"""BackdoorSuppressionTerm's seed is checked as every seed of the package is (engine.checks.check_seed)."""

import pytest

from lightning_causal.repair import BackdoorSuppressionTerm


@pytest.mark.parametrize("seed", [-1, 2**64])
def test_a_seed_torch_would_wrap_or_overflow_on_is_refused_naming_it(seed):
    with pytest.raises(ValueError, match=rf"argument `seed` to be an int in \[0, 18446744073709551615\] but got {seed}"):
        BackdoorSuppressionTerm(seed=seed)


def test_the_largest_seed_is_taken():
    assert BackdoorSuppressionTerm(seed=2**64 - 1).seed == 2**64 - 1
