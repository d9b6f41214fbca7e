"""A model that squeezes the batch dimension away on a batch of one sample is named as such."""

import pytest
import torch
from torch import nn

from lightning_causal.causal.engine.forward import Forward


class Squeezing(nn.Module):
    def __init__(self, outputs=3):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, outputs))

    def forward(self, x):
        return self.net(x).squeeze()


def test_a_one_row_pass_that_lost_its_batch_dimension_names_the_squeeze():
    torch.manual_seed(0)
    with pytest.raises(ValueError, match=r"drops the batch dimension of a batch of one sample .*x.squeeze\(-1\)"):
        Forward(Squeezing())(torch.randn(1, 5))
    with pytest.raises(ValueError, match=r"gave shape \(\): the model drops the batch dimension"):
        Forward(Squeezing(outputs=1))(torch.randn(1, 5))


def test_an_audit_of_a_squeezing_model_names_the_squeeze():
    from lightning_causal import UnitImportanceAudit, audit_model

    torch.manual_seed(0)
    x, y = torch.randn(8, 5), torch.randint(0, 3, (8,))
    with pytest.raises(ValueError, match="drops the batch dimension"):
        audit_model(Squeezing(), UnitImportanceAudit(["net.0"]), (x, y))


def test_several_rows_flattened_by_position_keep_the_output_hint():
    class Flat(nn.Module):  # per-position scores [N * T, C]: not a squeeze
        def forward(self, x):
            return x.reshape(-1, 1).expand(-1, 2)

    with pytest.raises(ValueError, match="pass `output=` a callable"):
        Forward(Flat())(torch.randn(1, 4))
