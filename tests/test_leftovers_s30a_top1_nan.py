"""leftovers_s30a: UnitImportanceAudit's ``<layer>/top1_importance`` where some unit's importance is NaN.

A unit whose ablation makes the output NaN (here ``sqrt(h_2 - 1)`` of a unit set to 0) has importance NaN; the
top-units table lists it last (``largest_k``), and ``top1_importance`` was the largest of the other units', 2.0,
finite, with nothing saying a unit was left out, while the top share (a sum over the units) and InputEffectAudit's
``max_abs_effect`` (``mean_abs.max()``) are NaN over a NaN entry. It is NaN now, as they are.
"""

import math
import warnings

import torch
from torch import nn

from lightning_causal import UnitImportanceAudit
from lightning_causal.audits import Probe


class _RootOfUnit2(nn.Module):
    """``h = (x_0, x_1, 2)``, ``f = h_0 + 2 h_1 + sqrt(h_2 - 1)``: setting h_2 to 0 gives sqrt(-1) = NaN."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 3)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
            self.lin.bias.copy_(torch.tensor([0.0, 0.0, 2.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lin(x)
        f = h[:, 0] + 2 * h[:, 1] + (h[:, 2] - 1).sqrt()
        return torch.stack([-f, f], 1)


def test_top1_importance_is_nan_where_a_units_importance_is():
    x = torch.tensor([[1.0, 1.0], [-1.0, 1.0]])  # |effects|: unit 0 1 and 1 (mean 1), unit 1 2 and 2 (mean 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = UnitImportanceAudit(layers=["lin"], target=1).run(_RootOfUnit2(), Probe(x))
    assert result.vectors["importance/lin"][:2].tolist() == [1.0, 2.0] and result.vectors["importance/lin"][2].isnan()
    assert [row["unit"] for row in result.tables["top_units/lin"]] == [1, 0, 2]  # NaN last, as before
    assert math.isnan(result.scalars["lin/top1_importance"])  # before: 2.0
    assert math.isnan(result.scalars["lin/top10_share"])
    assert any(n.startswith("the unit effects of layer 'lin' are not finite in samples [0, 1] of 2") for n in result.meta["notes"])


def test_top1_importance_of_finite_importances_is_the_largest():
    x = torch.tensor([[1.0, 1.0], [-1.0, 1.0]])
    torch.manual_seed(0)
    result = UnitImportanceAudit(layers=["0"], target=1).run(nn.Sequential(_RootOfUnit2().lin, nn.Linear(3, 2)), Probe(x))
    assert result.scalars["0/top1_importance"] == result.tables["top_units/0"][0]["importance"] > 0
