"""c32b5688 made the refusal of a probe the model does not take name the labels read beside the inputs, for a
denoiser ``forward(x_t, t)`` whose ``probe=(x_t, t)`` read ``t`` as labels ('missing 1 required positional argument').
It named them whatever the model's error: a classifier of 4 features given a probe of 5, whose labels are labels, was
told that its labels reach no model call and to pass them as an input, the timesteps of a denoiser (review of
c32b5688). The labels are named where forward misses a positional argument only."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_causal import CausalAuditCallback, InputEffectAudit
from tests.helpers.lightning import trainer


class Classifier(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self(batch[0][:, :4]), batch[1])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_a_classifier_s_shape_error_does_not_name_its_labels_as_inputs(tmp_path):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 5, generator=g), torch.randint(0, 3, (16,), generator=g)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    callback = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe=(x[:8], y[:8]), report_dir=tmp_path / "r")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            trainer(tmp_path, max_epochs=1, callbacks=[callback]).fit(Classifier(), loader)
        except MisconfigurationException as err:
            message = str(err)
        else:
            raise AssertionError("the probe was not refused")
    assert "cannot be multiplied" in message and "is rejected by the model" in message
    assert "the labels it read" not in message and "timesteps" not in message
