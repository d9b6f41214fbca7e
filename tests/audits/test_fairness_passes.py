"""FairnessAudit runs the factual forward pass on the probe once: the counterfactual gap, the worlds of an
``Intersections`` and the groups' decisions share it (they used to run it three times), with the same numbers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.audits import FairnessAudit, Probe
from lightning_causal.causal import AttributeFlip, Intersections


def _probe_and_model() -> tuple[torch.Tensor, torch.Tensor, nn.Module]:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(16, 3, generator=g)
    x[:, 0] = torch.tensor([0.0, 1.0] * 8)  # sex
    x[:, 1] = torch.tensor([0.0, 0.0, 1.0, 1.0] * 4)  # race
    y = torch.tensor([0, 1, 1, 0, 1, 1, 0, 0] * 2)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return x, y, model


def _passes(model: nn.Module, x: torch.Tensor, audit: FairnessAudit, labels: torch.Tensor | None):
    """The rows of each forward pass of ``model`` in ``audit.run``, and how many were the factual pass on ``x``."""
    rows, factual = [], []

    def count(_m, inputs, _out) -> None:
        rows.append(inputs[0].shape[0])
        factual.append(torch.equal(inputs[0], x))

    handle = model.register_forward_hook(count)
    try:
        result = audit.run(model, Probe(x, labels))
    finally:
        handle.remove()
    return rows, sum(factual), result


@pytest.mark.parametrize("worlds", [False, True])
def test_the_factual_pass_runs_once(worlds):
    x, y, model = _probe_and_model()
    flip = Intersections(AttributeFlip(0), {"sex": 0, "race": 1}) if worlds else AttributeFlip(0)
    rows, factual, _ = _passes(model, x, FairnessAudit(flip, worlds=worlds), y)
    # in all three passes: the trial pass that measures rows per pass (4 rows), the factual pass (16), and one pass of
    # the changed rows: the flip's 16, with the worlds also each row in the 3 of the 4 sex × race worlds it is not in
    assert factual == 1
    assert rows == [4, 16, 16 + 3 * 16 if worlds else 16]


def test_a_regression_target_costs_no_pass_of_its_own():
    x, _, model = _probe_and_model()
    with pytest.warns(UserWarning, match="regression target"):
        rows, factual, result = _passes(model, x, FairnessAudit(AttributeFlip(0)), torch.linspace(-2.5, 3.5, 16))
    assert factual == 1 and rows == [4, 16, 16]  # the labels' check reads the width of the factual pass's outputs
    assert "equalized_odds_difference" not in result.scalars


def test_the_numbers_are_those_of_separate_passes():
    """Values pinned from the audit before it shared the factual pass (three passes of it then)."""
    x, y, model = _probe_and_model()
    r = FairnessAudit(Intersections(AttributeFlip(0), {"sex": 0, "race": 1}), worlds=True).run(model, Probe(x, y))
    assert r.scalars["cf_gap"] == pytest.approx(0.05087168514728546, rel=1e-6)
    assert r.scalars["cf_gap_max"] == pytest.approx(0.14481323957443237, rel=1e-6)
    assert r.scalars["cf_flip_rate"] == 0.125
    assert r.scalars["world_gap_max"] == pytest.approx(0.47526872158050537, rel=1e-6)
    assert r.scalars["demographic_parity_difference"] == 0.75 and r.scalars["equalized_odds_difference"] == 0.75
    rows = r.tables["groups"]
    assert [row["positive_rate"] for row in rows] == [0.25, 0.25, 0.75, 0.0]
    assert [row["accuracy"] for row in rows] == [0.25, 0.25, 0.75, 1.0]
    assert [row["cf_gap"] for row in rows] == pytest.approx(
        [0.07652607560157776, 0.034388333559036255, 0.08634606003761292, 0.006226271390914917], rel=1e-6)
