import math

import pytest
import torch

from lightning_causal.causal.structure.significance import (
    adjust_p_values,
    p_values,
    paired_z,
    shares,
    z_critical,
)


def _holm_reference(p: list[float]) -> list[float]:
    """Step-down by the textbook loop: reject p_(1..k) while p_(i) <= alpha / (m - i + 1); the
    adjusted p-value is the smallest alpha at which each hypothesis is rejected."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def _bh_reference(p: list[float]) -> list[float]:
    m = len(p)
    return [min(min(1.0, m * p[j] / sum(1 for q in p if q <= p[j])) for j in range(m) if p[j] >= p[i]) for i in range(m)]


def test_corrections_on_constructed_p_values():
    p = torch.tensor([0.01, 0.04, 0.03, 0.005, 0.5], dtype=torch.float64)
    # Holm: sorted 0.005 0.01 0.03 0.04 0.5 times 5 4 3 2 1 -> 0.025 0.04 0.09 0.08 0.5, running max
    assert adjust_p_values(p, "holm").tolist() == pytest.approx([0.04, 0.09, 0.09, 0.025, 0.5])
    # BH: times 5/1 5/2 5/3 5/4 5/5 -> 0.025 0.025 0.05 0.05 0.5, running min from the top
    assert adjust_p_values(p, "bh").tolist() == pytest.approx([0.025, 0.05, 0.05, 0.025, 0.5])
    assert adjust_p_values(p, "none").tolist() == p.tolist()
    # at alpha = 0.05: Holm rejects 2 hypotheses, BH 4, no correction 4
    assert [int((adjust_p_values(p, m) <= 0.05).sum()) for m in ("holm", "bh", "none")] == [2, 4, 4]


def test_corrections_match_reference_loops_with_ties():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        p = torch.rand(9, generator=g, dtype=torch.float64) ** 3
        p[3] = p[5]  # a tie
        assert adjust_p_values(p, "holm").tolist() == pytest.approx(_holm_reference(p.tolist()))
        assert adjust_p_values(p, "bh").tolist() == pytest.approx(_bh_reference(p.tolist()))


def test_paired_z_p_values_and_critical_values():
    mean, se, z = paired_z(torch.tensor([[2.0, 4.0, 6.0, 8.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]))
    assert mean.tolist() == [5.0, 1.0, 0.0]
    assert float(se[0]) == pytest.approx(math.sqrt(20 / 3) / 2)
    assert float(z[0]) == pytest.approx(3.8729833) and z[1] == math.inf and z[2] == 0.0
    p = p_values(z, "greater")
    assert float(p[0]) == pytest.approx(5.3756e-05, rel=1e-4) and p[1] == 0.0 and p[2] == 0.5
    assert p_values(torch.tensor([-2.0]), "two-sided").item() == pytest.approx(0.0455003, rel=1e-5)
    assert z_critical(0.05) == pytest.approx(1.6448536) and z_critical(0.05, "two-sided") == pytest.approx(1.959964)
    _, se1, z1 = paired_z(torch.tensor([[3.0]]))
    assert math.isnan(se1.item()) and z1.item() == 0.0


def test_shares_per_group():
    mean = torch.tensor([2.0, 1.0, -4.0, 0.5, 0.0])
    groups = torch.tensor([0, 0, 0, 1, 2])
    assert shares(mean, groups, "greater").tolist() == [1.0, 0.5, 0.0, 1.0, 0.0]
    assert shares(mean, groups, "two-sided").tolist() == [0.5, 0.25, 1.0, 1.0, 0.0]
