"""newuser55's trial: CaptumBaseline's deletion and insertion curves on a classifier whose softmax is saturated.

Logits 100 and more apart keep the explained class's probability at exactly 1.0 whatever is set to the baseline:
every curve of every method was flat at 1, so deletion_auc and insertion_auc read 1.0 for the causal map and each
Captum method alike (deletion: "lower is better", the worst score) without a word that the areas compare nothing.
"""

import pytest
import torch
from torch import nn

from lightning_causal import CaptumBaseline
from lightning_causal.audits import CompareSettings, Probe
from lightning_causal.causal.engine.probe_warnings import ProbeContentsWarning


def _saturated() -> tuple[nn.Module, torch.Tensor]:
    model = nn.Linear(2, 2)
    with torch.no_grad():  # z_1 - z_0 = 100 x_0 + 200 x_1 + 100 >= 100 on [0, 1]^2 and at the baseline 0
        model.weight.copy_(torch.tensor([[0.0, 0.0], [100.0, 200.0]]))
        model.bias.copy_(torch.tensor([0.0, 100.0]))
    return model.eval(), torch.rand(16, 2, generator=torch.Generator().manual_seed(0))


def test_curves_that_never_move_are_said_to_compare_nothing():
    model, x = _saturated()
    with pytest.warns(ProbeContentsWarning, match="no probe sample's deletion or insertion curve moves") as got:
        result = CaptumBaseline(("IntegratedGradients", "Saliency")).run(model, Probe(x))
    assert "CompareSettings(score='raw')" in str(got[0].message)
    for label in ("causal", "IntegratedGradients", "Saliency"):
        assert result.meta["curve_auc"]["deletion"][label] == 1.0 == result.meta["curve_auc"]["insertion"][label]
    assert any("the areas compare nothing" in note and "stays at 1 " in note for note in result.meta["notes"])


def test_the_raw_score_draws_the_logit_and_says_nothing():
    model, x = _saturated()
    result = CaptumBaseline(("Saliency",), settings=CompareSettings(score="raw"), target=1).run(model, Probe(x))
    assert not any("compare nothing" in note for note in result.meta.get("notes", []))
    # deletion of the causal ranking (δ_g = w_g x_g against 0, largest first), at fractions 0, 1/2, 1, trapezoids:
    d = torch.stack([100 * x[:, 0], 200 * x[:, 1]], 1)
    z = 100 * x[:, 0] + 200 * x[:, 1] + 100
    curve = torch.stack([z, z - d.max(1).values, torch.full_like(z, 100.0)], 1)
    auc = 0.25 * (curve[:, 0] + 2 * curve[:, 1] + curve[:, 2])
    assert result.meta["curve_auc"]["deletion"]["causal"] == pytest.approx(float(auc.mean()), rel=1e-5)
