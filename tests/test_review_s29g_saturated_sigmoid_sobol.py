"""Review of 2a52216a: SobolAudit on a saturated binary classifier of one logit.

2a52216a names a saturated softmax by running the model for the raw output of the explained class; a model of one
output (a binary classifier's logit z, p_1 = sigmoid(z)) has one raw output, column 0, and class 1 (the one it
predicts, chosen by default) stopped the audit with "Expected the model to return [M, classes] with class 1 but got
shape [64, 1]" where it had warned that the probability was constant.
"""

import pytest
import torch
from torch import nn

from lightning_causal import SobolAudit
from lightning_causal.audits import Probe
from lightning_causal.causal.engine.probe_warnings import ProbeContentsWarning


def _saturated_logit() -> tuple[nn.Module, torch.Tensor]:
    model = nn.Linear(2, 1)
    with torch.no_grad():  # z = 100 x_0 + 200 x_1 + 200 >= 200 on [0, 1]^2: sigmoid(z) = 1.0, sigmoid(-z) = 0.0 in float32
        model.weight.copy_(torch.tensor([[100.0, 200.0]]))
        model.bias.fill_(200.0)
    return model.eval(), torch.rand(64, 2, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(("target", "p"), [(None, 1), (1, 1), (0, 0)])
def test_a_saturated_sigmoid_is_named_with_its_logit_range(target, p):
    model, x = _saturated_logit()
    z = model(x)[:, 0]
    with pytest.warns(ProbeContentsWarning, match=rf"sigmoid probability of class {1 if target is None else target} is {p} on every input") as got:
        result = SobolAudit(n=128, target=target).run(model, Probe(x))  # before: ValueError (class 1 of shape [64, 1])
    words = next(str(w.message) for w in got if "saturated" in str(w.message))
    assert f"its one output (the logit) varies over the probe (from {float(z.min()):.4g} to {float(z.max()):.4g})" in words
    assert "`probability=False` (and `target=None` or 0" in words
    assert result.scalars["output_variance"] == 0.0


def test_the_way_out_explains_the_logit():
    model, x = _saturated_logit()
    result = SobolAudit(n=1024, probability=False).run(model, Probe(x))
    # z = 100 x_0 + 200 x_1 + 200 of independent columns drawn from the probe: S_0 = var x_0 / (var x_0 + 4 var x_1)
    v0, v1 = float(x[:, 0].var(unbiased=False)), float(x[:, 1].var(unbiased=False))
    assert result.scalars["S/0"] == pytest.approx(v0 / (v0 + 4 * v1), abs=0.03)
    assert result.scalars["S/1"] == pytest.approx(4 * v1 / (v0 + 4 * v1), abs=0.03)
