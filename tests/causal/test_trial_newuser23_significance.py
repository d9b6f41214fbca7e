"""Calibration of the causal graph's node and edge tests under known truth (newuser23 statistics trial).

The paired statistic ``z = mean / (sd / √n)`` of normal differences is Student's t with ``n - 1`` degrees
of freedom. The graph referred it to the normal (1.645 at alpha = 0.05), which rejects a null unit 8.8% of
the time with n = 5 (two-sided 12.2%): measured 0.098 ± 0.018 over 1000 graphs of a null unit, n = 5.
"""

import math

import pytest
import torch
from torch import nn

from lightning_causal.causal.structure.graph import causal_graph
from lightning_causal.causal.structure.significance import adjust_p_values, p_values, paired_z


def _binomial_upper(rate: float, reps: int, z: float = 3.29) -> float:
    """Upper end of the two-sided 99.9% normal interval of a rejection rate ``rate`` over ``reps`` replicates."""
    return rate + z * math.sqrt(rate * (1 - rate) / reps)


def test_student_t_p_values_match_closed_forms():
    t = torch.tensor([0.0, 0.5, 1.0, 2.0, 3.8729833, 10.0], dtype=torch.float64)
    cauchy = 0.5 - torch.atan(t) / math.pi  # 1 degree of freedom
    two = 0.5 - t / (2 * torch.sqrt(2 + t**2))  # 2 degrees of freedom
    th = torch.atan(t / math.sqrt(3))
    three = 0.5 - (th + torch.sin(th) * torch.cos(th)) / math.pi  # 3 degrees of freedom
    for df, want in ((1, cauchy), (2, two), (3, three)):
        assert torch.allclose(p_values(t, "greater", df=df), want, rtol=1e-10, atol=0)
        assert torch.allclose(p_values(-t, "greater", df=df), 1 - want, rtol=1e-10, atol=0)
        assert torch.allclose(p_values(-t, "two-sided", df=df), (2 * want).clamp(max=1), rtol=1e-10, atol=0)
    far = p_values(torch.tensor([40.0]), "greater", df=torch.tensor([3.0]))  # far tail keeps its digits
    th = math.atan(40 / math.sqrt(3))
    assert float(far) == pytest.approx(0.5 - (th + math.sin(th) * math.cos(th)) / math.pi, rel=1e-6)
    assert p_values(torch.tensor([1.0]), "greater", df=1e7).item() == pytest.approx(0.15865525, rel=1e-5)
    assert p_values(torch.tensor([0.0]), "greater", df=0).item() == 0.5  # fewer than two samples: z = 0
    for alternative in ("greater", "two-sided"):  # infinite df: the normal (came back 0.5 and 1.0 whatever z)
        z = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
        assert torch.equal(p_values(z, alternative, df=math.inf), p_values(z, alternative))
    for alternative in ("greater", "two-sided"):  # a NaN statistic stays NaN (came back 0.5 and 1.0, after 5,000 iterations)
        p = p_values(torch.tensor([math.nan, 1.0]), alternative, df=3)
        assert math.isnan(p[0]) and float(p[1]) == pytest.approx(float(p_values(torch.tensor([1.0]), alternative, df=3)))


def test_the_paired_test_holds_its_level_on_few_samples_and_detects_a_planted_effect():
    reps, n, alpha = 4000, 5, 0.05
    d = torch.randn(reps, n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)  # null: mean 0
    _, _, z = paired_z(d)
    for alternative in ("greater", "two-sided"):
        rate = float((p_values(z, alternative, df=n - 1) <= alpha).double().mean())
        assert rate <= _binomial_upper(alpha, reps), (alternative, rate)  # the normal reference: 0.086 and 0.119
        assert rate >= alpha - 3.29 * math.sqrt(alpha * (1 - alpha) / reps)  # not conservative either
    _, _, z = paired_z(d[:, :5] + 2.0)  # a planted effect of 2 sd, n = 5: noncentral t power 0.97
    assert float((p_values(z, "greater", df=n - 1) <= alpha).double().mean()) > 0.85


def test_corrections_hold_the_family_wise_error_and_the_false_discovery_rate():
    reps, n, m, alpha = 2000, 6, 10, 0.05
    d = torch.randn(reps, m, n, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    d[:, 5:] += 3.0  # five planted effects, five nulls
    _, _, z = paired_z(d)
    p = p_values(z, "greater", df=n - 1)
    holm = torch.stack([adjust_p_values(row, "holm") for row in p]) <= alpha
    bh = torch.stack([adjust_p_values(row, "bh") for row in p]) <= alpha
    fwer = float(holm[:, :5].any(1).double().mean())
    false = bh[:, :5].sum(1).double()
    fdr = float((false / bh.sum(1).clamp_min(1)).mean())
    assert fwer <= _binomial_upper(alpha, reps) and fdr <= _binomial_upper(alpha, reps), (fwer, fdr)
    assert float(bh[:, 5:].double().mean()) > 0.8  # power on the planted ones


def _two_unit_model() -> nn.Module:
    model = nn.Sequential(nn.Linear(1, 1), nn.Linear(1, 2))
    with torch.no_grad():
        model[0].weight.fill_(1.0), model[0].bias.zero_()
        model[1].weight.copy_(torch.tensor([[1.0], [0.0]])), model[1].bias.zero_()
    return model


def test_a_unit_at_two_standard_errors_of_five_samples_is_not_a_node():
    # effects of unit 0:0 on class 0 are x itself; z = 2.0 exactly: past the normal's 1.645, short of t_4's 2.132
    c = torch.tensor([[-2.0], [-1.0], [0.0], [1.0], [2.0]])
    x = c / c.std() + 2.0 / math.sqrt(5)  # sd 1, mean 2 standard errors
    _, se, z = paired_z(x.T.double())
    assert float(z) == pytest.approx(2.0, rel=1e-6)
    g = causal_graph(_two_unit_model(), x, ["0"], target=0, min_share=0.0)
    assert "0:0" not in g.nodes  # p = P(T_4 >= 2) = 0.058; before: 1 - Φ(2) = 0.023, a node
    loose = causal_graph(_two_unit_model(), x, ["0"], target=0, min_share=0.0, alpha=0.06)
    assert loose.node_stats["0:0"]["p_value"] == pytest.approx(0.05805826, rel=1e-5)


def _null_layer_model(units: int) -> nn.Module:
    """``units`` hidden units, unit ``u`` = ``x_u``, all read into logit 0 with weight 1: the effect of
    unit ``u`` on class 0 is ``x_u`` itself (zeroed: ``baseline="zero"``)."""
    model = nn.Sequential(nn.Linear(units, units), nn.Linear(units, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(units)), model[0].bias.zero_()
        model[1].weight.zero_(), model[1].weight[0].fill_(1.0), model[1].bias.zero_()
    return model


def test_the_edge_correction_counts_the_tests_of_every_unit_not_only_of_the_nodes():
    # ten units: unit 0's effects have t = 2.6 over 20 samples (p = 0.0088, a node), the nine others mean 0
    # (p = 0.5). Its edge into output:0 is the node's own test; corrected over the ten units' tests
    # (they all were tested to choose the nodes) Holm gives 10 p = 0.088 and BH 0.088: no edge. Before,
    # the family was the node's edge alone (p_adjusted = p = 0.0088), kept whatever the correction.
    n, units = 20, 10
    x = torch.randn(n, units, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = (x - x.mean(0)) / x.std(0)
    x[:, 0] += 2.6 / math.sqrt(n)
    for correction in ("holm", "bh"):
        g = causal_graph(_null_layer_model(units).double(), x, ["0"], top_k=None, target=0, min_share=0.0,
                         correction=correction, ablation="zero")
        assert g.nodes == ["0:0", "output:0"]  # node tests are not corrected (as the paper, documented)
        assert g.edges == [] and g.meta["tests"] == units and g.meta["candidates"] == 1, correction
    g = causal_graph(_null_layer_model(units).double(), x, ["0"], top_k=None, target=0, min_share=0.0,
                     correction="none", ablation="zero")
    assert g.edges == [("0:0", "output:0", 1.0)] and g.edge_stats[0]["p_value"] == pytest.approx(0.00882, rel=2e-2)


def test_holm_holds_the_family_wise_error_of_a_graph_of_null_units():
    # every unit's effect is x_u ~ N(0, 1): no edge is true. Measured before the fix: an edge in 35% of 300
    # graphs (10 units, n = 20, Holm); after: 4.3% +- 2.3%.
    reps, alpha = 120, 0.05
    model = _null_layer_model(10)
    gen = torch.Generator().manual_seed(3)
    false = sum(bool(causal_graph(model, torch.randn(20, 10, generator=gen), ["0"], top_k=None, target=0, min_share=0.0,
                                  correction="holm", ablation="zero").edges) for _ in range(reps))
    assert false / reps <= _binomial_upper(alpha, reps)  # 0.05 + 3.29 SE = 0.116; before: about 0.35


def test_many_degrees_of_freedom_take_wallaces_transform_within_its_error(monkeypatch):
    # The continued fraction takes about sqrt(df) steps: 2 s for 1,000 statistics at df = 1e5, 3.4 s at 1e6.
    # From LARGE_DF the tail is Wallace's normal transform; SciPy's t is the reference.
    from scipy.stats import t as student

    from lightning_causal.causal.structure import significance

    seen: list[float] = []
    fraction = significance._beta_fraction
    monkeypatch.setattr(significance, "_beta_fraction", lambda a, b, x, **kw: seen.append(float(a.max())) or fraction(a, b, x, **kw))
    z = torch.linspace(-40.0, 40.0, 401, dtype=torch.float64)
    for df in (significance.LARGE_DF, 1e6, 1e8):
        want = torch.from_numpy(student.sf(z.numpy(), df))
        got = p_values(z, "greater", df=df)
        keep = want > 1e-300
        assert torch.allclose(got[keep], want[keep], rtol=5e-6, atol=0), df
        right = keep & (z > 0)
        assert torch.allclose(p_values(-z, "two-sided", df=df)[right], 2 * want[right], rtol=5e-6, atol=0), df
    assert max(seen) <= 1.0, seen  # the fraction ran on no large-df entry (its a = df / 2, or 1/2 where swapped)
