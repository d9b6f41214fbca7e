"""``target=`` is an output's column, and a quantile regressor's user reads the median as ``target=0.5``: every audit
and estimator refused it saying only that it is no int. The refusals now say it is a column, not a quantile level,
naming the median's column ``target=1`` of outputs at (0.1, 0.5, 0.9); a whole float (``2.0``) keeps its message."""

import pytest
import torch
from torch import nn

from lightning_causal.audits import CausalGraphAudit, FairnessAudit, InputEffectAudit, SobolAudit
from lightning_causal.causal import AttributeFlip, column_mask, input_effects, unit_effects

HINT = "not a quantile level"


@pytest.mark.parametrize("make", [
    lambda t: InputEffectAudit(target=t), lambda t: SobolAudit(target=t), lambda t: FairnessAudit(AttributeFlip(0), target=t),
    lambda t: CausalGraphAudit(["0"], target=t)], ids=["input_effects", "sobol", "fairness", "graph"])
def test_the_audits_name_the_column(make):
    with pytest.raises(ValueError, match=HINT) as refused:
        make(0.5)
    assert "`target=1`" in str(refused.value)
    with pytest.raises(ValueError) as whole:
        make(2.0)
    assert HINT not in str(whole.value)


def test_the_estimators_name_the_column():
    model, x = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 3)).eval(), torch.randn(4, 3)
    with pytest.raises(TypeError, match=HINT):
        input_effects(model, x, column_mask(3), target=0.9)
    with pytest.raises(TypeError, match=HINT):
        unit_effects(model, x, "1", target=0.1)
