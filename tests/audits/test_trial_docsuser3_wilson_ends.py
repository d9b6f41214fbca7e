"""Wilson's interval at 0 and n positives holds its estimate exactly (its floats once did not: a fit crashed)."""

import numpy as np
import pytest

from lightning_causal.audits.fairness import wilson_interval
from lightning_causal.reporting.chart_figures import interval_bar_figure


@pytest.mark.parametrize("n", [7, 10, 13, 35, 48])
def test_interval_holds_the_estimate_at_the_ends(n: int) -> None:
    # analytically the lower end at 0 positives is 0 and the upper end at n positives is 1; in floats
    # centre - half was 6.9e-18 at 0 of 35, and 1 - 1.1e-16 at 10 of 10
    assert wilson_interval(0, n)[0] == 0.0
    assert wilson_interval(n, n)[1] == 1.0
    for k in range(n + 1):
        low, high = wilson_interval(k, n)
        assert low <= k / n <= high


def test_group_of_no_positive_decision_draws() -> None:
    # FairnessAudit's groups figure for a group of 35 rows without a positive decision: matplotlib refused
    # the negative error bar ("'xerr' must not contain negative values") and the fit stopped
    rows = [{"group": 0, "positive_rate": 0.0, "positive_rate_ci": wilson_interval(0, 35)}]
    fig = interval_bar_figure(rows, "positive rate per group", label="group")
    bar = fig.axes[0].patches[0]
    assert bar.get_width() == 0.0
    assert np.isclose(wilson_interval(0, 35)[1], 0.0989, atol=1e-4)
