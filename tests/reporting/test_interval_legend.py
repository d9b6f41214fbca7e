"""Interval bar figures name their metrics in a legend only where there are several (one metric: the x axis names it,
and the legend box covered the top bar's interval: FairnessAudit's positive rate per group)."""

from lightning_causal.reporting.chart_figures import interval_bar_figure


def test_one_metric_draws_no_legend_and_several_do():
    one = [{"group": "a=0", "positive_rate": 0.48, "positive_rate_ci": [0.4, 0.56]},
           {"group": "a=1", "positive_rate": 0.62, "positive_rate_ci": [0.53, 0.7]}]
    assert interval_bar_figure(one, "positive rate per group").axes[0].get_legend() is None
    two = [{"group": "x", "S": 0.5, "S_ci": [0.4, 0.6], "ST": 0.7, "ST_ci": [0.6, 0.8]}]
    legend = interval_bar_figure(two, "sobol indices").axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["S", "ST"]
