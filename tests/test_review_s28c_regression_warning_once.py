"""Review of newuser51's trial (its found-not-mended item): ``target=None`` on a model of several outputs with
real-valued labels warns that the predicted class mixes outputs. The warning embedded the labels' shape, ``[2, 4]`` in
the callback's dry run on 2 samples and ``[128, 4]`` at the first audit, so ``WarningsOncePerFit`` (exact text) showed
it twice in one fit. The labels' rows are now ``N``: ``real-valued [N, 4]``, shown once."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit
from lightning_causal.audits.task_warnings import warn_predicted_class_of_regression

X = torch.randn(64, 5, generator=torch.Generator().manual_seed(0))
Y = 2.0 * X[:, :4] + 0.5  # four real-valued targets: a multi-output regression


class Regressor(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(5, 4)

    def forward(self, x):
        return self.lin(x)

    def training_step(self, batch, batch_idx):
        return ((self(batch[0]) - batch[1]) ** 2).mean()

    def validation_step(self, batch, batch_idx):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _said(labels: torch.Tensor) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_predicted_class_of_regression("InputEffectAudit 'ie'", labels, torch.zeros(len(labels), 4), model=nn.Linear(5, 4))
    return [str(w.message) for w in caught]


def test_the_warning_on_two_samples_reads_as_on_the_whole_probe():
    two, whole = _said(Y[:2]), _said(Y)
    assert len(two) == len(whole) == 1 and two == whole  # before: [2, 4] and [64, 4]
    assert "real-valued [N, 4]" in whole[0]


def test_a_fit_shows_the_warning_once(tmp_path):
    callback = CausalAuditCallback([InputEffectAudit(name="ie")], probe_size=32, report_dir=tmp_path)
    trainer = pl.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[callback])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        trainer.fit(Regressor(), DataLoader(TensorDataset(X, Y), batch_size=16), DataLoader(TensorDataset(X, Y), batch_size=16))
    said = [str(w.message) for w in caught if "`target=None`" in str(w.message)]
    assert len(said) == 1, said  # before: at set-up ([2, 4]) and at the first audit ([32, 4])


def _said_of(labels: torch.Tensor, width: int) -> str:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_predicted_class_of_regression("InputEffectAudit 'ie'", labels, torch.zeros(len(labels), width), model=nn.Linear(5, width))
    assert len(caught) == 1
    return str(caught[0].message)


def test_the_horizons_guessed_are_the_labels_columns_not_the_outputs():
    """Three quantiles of one horizon (``output=lambda out: out[:, h]`` of ``[N, H, Q]``) beside labels of 4 horizons:
    before, 'a forecast of 3 horizons?'; a mean and a log-variance beside one target per sample: 'a forecast of 2
    horizons?'."""
    quantiles = _said_of(Y, 3)
    assert "the model's 3 outputs" in quantiles and "real-valued [N, 4] (a regression of 4 values per sample, e.g. a forecast's 4 horizons" in quantiles
    one_target = _said_of(Y[:, 0], 2)
    assert "real-valued [N] (a regression?)" in one_target and "horizons" not in one_target
