"""``carrier_unit_effects`` given ``max_batch_size=1`` ran its patched rows alone beside the factual probabilities and
the layer's factual and counterfactual activations from one pass of the whole probe: a model branching on its batch's
mean of x0 mixed two branches (samples 0 and 7 off the hand per-sample computation by up to 0.14), the bug 4227ace2 and
8b484260 fixed for the unit and input effects, the layer map and the causal graph. The factual and counterfactual
samples now run alone too at ``max_batch_size=1``; and without it the patched rows stacked in one pass are checked
against rows run alone (the stacked-rows refusal, whose way out is ``max_batch_size=1``), where before such a model was
answered in silence with the probe's batch's branch for every sample."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import AttributeFlip, carrier_unit_effects
from lightning_causal.causal.engine.stacked_rows import StackedRowsError
from tests.causal.test_mends_s41a_clean_alone import Branch


def _probe() -> torch.Tensor:
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
    x[:, 0] = x[:, 0].abs() + 0.5
    x[[0, 7], 0] = -0.3  # alone these two take the x3 branch, in the probe's batch the plain one
    x[:, 3] = (torch.arange(8) % 2).float()  # the sensitive attribute, flipped
    return x


def _carried_alone(model: Branch, x: torch.Tensor) -> torch.Tensor:
    """p_1(x | do(h_u := h_u(x_cf))) - p_1(x), each sample run alone: the hand loop."""
    x_cf = x.clone()
    x_cf[:, 3] = 1 - x_cf[:, 3]

    def carried(i: int, u: int) -> torch.Tensor:
        h, h_cf = model.fc(x[i:i + 1]), model.fc(x_cf[i:i + 1])
        patched = torch.where(torch.arange(3) == u, h_cf, h)
        scale = 1.0 if x[i, 0] > 0 else 3.0  # the sample's own branch, alone
        return torch.softmax(scale * model.head(patched), 1)[0, 1] - torch.softmax(scale * model.head(h), 1)[0, 1]

    with torch.no_grad():
        return torch.stack([torch.stack([carried(i, u) for u in range(3)]) for i in range(x.shape[0])])


def test_carrier_effects_one_row_per_pass_are_each_samples_own() -> None:
    model, x = Branch().eval(), _probe()
    with pytest.raises(StackedRowsError, match="max_batch_size=1"):
        carrier_unit_effects(model, x, AttributeFlip(3), "fc", target=1)
    effects = carrier_unit_effects(model, x, AttributeFlip(3), "fc", target=1, max_batch_size=1)
    torch.testing.assert_close(effects, _carried_alone(model, x), rtol=0, atol=1e-6)


def test_a_per_sample_model_gives_the_same_carrier_effects_at_one_row_per_pass() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2)).eval()
    x = _probe()
    torch.testing.assert_close(carrier_unit_effects(model, x, AttributeFlip(3), "0", target=1, max_batch_size=1),
                               carrier_unit_effects(model, x, AttributeFlip(3), "0", target=1), rtol=0, atol=1e-6)
