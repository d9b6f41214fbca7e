"""Review of newuser80's report ("cf_gap of a regression compares sigmoids"): FairnessAudit warned that cf_gap is no
change of a regression's output only where the probe's labels are a regression target. A probe without labels (the
callback's `unpack_batch=lambda b: (b[0], None, None)`, `Probe(x)` by hand) of a model that says it regresses (an
`nn.MSELoss` held, `hparams.task = "regression"`) got cf_gap, the change of the output's sigmoid, and cf_flip_rate, the
flips of its sign, without a word: on a load_diabetes regressor cf_gap 0.063 where the output moves by 0.284 on average.
It is warned about now as with regression labels; a one-output model that says nothing of its task (a binary
classifier's logit reads alike) stays silent."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import FairnessAudit, Probe
from lightning_causal.causal import AttributeFlip


class Regressor(nn.Module):  # trained on the mean squared error: its loss held, as label_task reads it
    def __init__(self, with_loss: bool = True) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
        if with_loss:
            self.loss = nn.MSELoss()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 3 * self.net(x)


def _x() -> torch.Tensor:
    x = torch.randn(24, 4, generator=torch.Generator().manual_seed(1))
    x[:, 3] = (x[:, 3] > 0).float()
    return x


def test_an_unlabelled_probe_of_a_regressor_is_warned_of() -> None:
    with pytest.warns(UserWarning, match=r"the model says it is a regression .*cf_gap is not the change of the output"):
        FairnessAudit(AttributeFlip(3), sensitive=3, compare="probability").run(Regressor(), Probe(_x()))


def test_the_same_one_output_model_saying_nothing_of_its_task_stays_silent() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = FairnessAudit(AttributeFlip(3), sensitive=3).run(Regressor(with_loss=False), Probe(_x()))
    assert result.scalars["cf_changed"] == 1.0
