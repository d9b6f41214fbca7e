"""newuser55's trial: SobolAudit on a classifier whose softmax is saturated.

A model with large logits (margins of 100 and more: its probability is exactly 1.0 in float32 on every
input) gave every Sobol' index 0 with the words "the softmax probability is constant over the inputs drawn
from the probe (a model whose output ignores them)", where the model reads both inputs (its logit moves by
hundreds) and ``probability=False`` explains that logit.
"""

import pytest
import torch
from torch import nn

from lightning_causal import SobolAudit
from lightning_causal.audits import Probe
from lightning_causal.causal.engine.probe_warnings import ProbeContentsWarning


def _saturated() -> tuple[nn.Module, torch.Tensor]:
    model = nn.Linear(2, 2)
    with torch.no_grad():  # z_1 - z_0 = 100 (x_0 + 2 x_1) + 100 >= 100 on [0, 1]^2: p_1 = 1.0 in float32
        model.weight.copy_(torch.tensor([[0.0, 0.0], [100.0, 200.0]]))
        model.bias.copy_(torch.tensor([0.0, 100.0]))
    return model.eval(), torch.rand(128, 2, generator=torch.Generator().manual_seed(0))


def test_a_saturated_softmax_is_named_with_the_way_out():
    model, x = _saturated()
    with pytest.warns(ProbeContentsWarning, match=r"softmax probability of class 1 is 1 on every input .* saturated in float32") as got:
        result = SobolAudit(n=256).run(model, Probe(x))
    words = str(got[0].message)
    assert "ignores them" not in words and "`probability=False`" in words
    lo, hi = float(model(x)[:, 1].min()), float(model(x)[:, 1].max())
    assert f"from {lo:.4g} to {hi:.4g}" in words
    assert result.scalars["output_variance"] == 0.0 and result.meta["notes"][0].startswith("the softmax probability of class 1 is 1")


def test_the_way_out_explains_the_logit():
    model, x = _saturated()
    result = SobolAudit(n=1024, probability=False, target=1).run(model, Probe(x))
    # z_1 = 100 x_0 + 200 x_1 + 100 of independent columns drawn from the probe: S_0 = var x_0 / (var x_0 + 4 var x_1)
    v0, v1 = float(x[:, 0].var(unbiased=False)), float(x[:, 1].var(unbiased=False))
    assert result.scalars["S/0"] == pytest.approx(v0 / (v0 + 4 * v1), abs=0.03)
    assert result.scalars["S/1"] == pytest.approx(4 * v1 / (v0 + 4 * v1), abs=0.03)


def test_a_model_that_ignores_its_inputs_keeps_its_words():
    model, x = _saturated()
    with torch.no_grad():
        model.weight.zero_()  # z = (0, 100) whatever the input: p_1 = 1.0, and the logit does not move either
    with pytest.warns(ProbeContentsWarning, match="a model whose output ignores them"):
        SobolAudit(n=256).run(model, Probe(x))
