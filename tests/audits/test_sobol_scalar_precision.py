"""SobolAudit's scalars S/<group>, ST/<group> and sum_S were float32 roundings of the float64 estimates its
indices table holds (0.62605559826 against 0.62605559197 in the newuser19 trial): a CI gate reading one and
a plot of the other disagreed in the 8th digit."""

from __future__ import annotations

import torch

from lightning_causal.audits import Probe, SobolAudit


def test_the_scalars_are_the_table_s_estimates_not_their_float32_rounding():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    r = SobolAudit(n=64, n_bootstrap=0, target=1, feature_names=["a", "b", "c"]).run(model, Probe(torch.randn(32, 3)))
    rows = r.tables["indices"]
    for row in rows:
        assert r.scalars[f"S/{row['feature']}"] == row["S"] and r.scalars[f"ST/{row['feature']}"] == row["ST"]
    assert abs(r.scalars["sum_S"] - sum(row["S"] for row in rows)) < 1e-15
