"""Trial "edge": integer inputs (category codes) to a model with float weights that does not cast
them. torch says "mat1 and mat2 must have the same dtype, but got Long and Float"; the hint for
float inputs of another precision did not cover integers, so the estimators gave torch's message
alone and the callback advised giving `forward` other parameters. Both now say to cast inside
forward (or to read token ids with an embedding). A model that casts gets the brute-force effects."""

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, UnitImportanceAudit
from lightning_causal.audits import Probe
from lightning_causal.causal import input_effects
from lightning_causal.models import MLP, LightningClassifier
from tests.helpers.lightning import quick_trainer

_CAST = r"torch\.int64 \(integer: category codes or token ids\).*cast inside the model's forward"


def test_the_estimators_say_to_cast():
    torch.manual_seed(0)
    with pytest.raises(RuntimeError, match=_CAST):
        input_effects(nn.Linear(4, 2), torch.randint(0, 3, (5, 4)), baseline=0)


def test_the_callback_says_to_cast():
    torch.manual_seed(0)
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    cb = CausalAuditCallback([UnitImportanceAudit(["model.net.0"])], probe=Probe(torch.randint(0, 3, (5, 4))))
    with pytest.raises(MisconfigurationException, match=_CAST) as err:
        quick_trainer(callbacks=[cb], max_epochs=1, num_sanity_val_steps=0).fit(
            LightningClassifier(MLP(4, (8,), 3), lr=0.01), DataLoader(TensorDataset(x, y), batch_size=8))
    assert "give `forward` these parameters" not in str(err.value)  # the call's form is not the fault


class Casting(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(4, 2).double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.double())


def test_a_model_that_casts_gets_the_brute_force_effects():
    model, x = Casting(), torch.randint(0, 3, (5, 4), generator=torch.Generator().manual_seed(1))
    got = input_effects(model, x, baseline=0, target=1)
    with torch.no_grad():
        expected = torch.stack([model(x)[:, 1] - model(x.masked_fill(torch.arange(4) == g, 0))[:, 1] for g in range(4)], 1)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
