"""A CausalRepairModule fitted without validation data gave Lightning's PossibleUserWarning "You defined a
`validation_step` but have no `val_dataloader`" (its own step, which the user did not write): a user with
``filterwarnings = error`` (or ``python -W error``) could not fit it. A plain LightningModule without a
``validation_step`` does not warn; the repair module must not either (plain and ``wrap()``), while a fit with
validation data still validates and the step stays callable after the fit."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.utilities.warnings import PossibleUserWarning
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalRepairModule
from tests.helpers.lightning import trainer


class _Plain(pl.LightningModule):
    """A LightningModule with a training step only (no validation_step)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(4, 2)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _loader() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.randn(16, 4, generator=g), torch.arange(16) % 2), batch_size=8)


def _warnings_as_errors() -> None:
    warnings.simplefilter("error")  # as `filterwarnings = error` / `python -W error`
    warnings.filterwarnings("ignore", ".*does not have many workers.*")  # the suite's own filter
    # Lightning's own use of torch's pytree with newer torch (a plain module meets it too)
    warnings.filterwarnings("ignore", ".*isinstance.treespec, LeafSpec.*", FutureWarning)


def _fit_as_error(module: pl.LightningModule, tmp_path, **loaders) -> pl.Trainer:
    tr = trainer(tmp_path, max_epochs=1)
    with warnings.catch_warnings():
        _warnings_as_errors()
        tr.fit(module, _loader(), **loaders)
    return tr


def test_a_plain_module_without_validation_data_fits_under_warnings_as_errors(tmp_path):
    _fit_as_error(_Plain(), tmp_path)  # the reference: Lightning does not warn here


def test_a_repair_module_without_validation_data_fits_under_warnings_as_errors(tmp_path):
    torch.manual_seed(0)
    repair = CausalRepairModule(nn.Linear(4, 2), terms=[])
    _fit_as_error(repair, tmp_path)  # failed before: PossibleUserWarning raised as an error
    assert callable(repair.validation_step)  # the step is there again after the fit


def test_a_wrapped_module_without_validation_data_fits_under_warnings_as_errors(tmp_path):
    repair = CausalRepairModule.wrap(_Plain(), terms=[])
    _fit_as_error(repair, tmp_path)  # failed before: PossibleUserWarning raised as an error
    assert callable(repair.validation_step)


def test_a_repair_module_with_validation_data_still_validates(tmp_path):
    torch.manual_seed(0)
    repair = CausalRepairModule(nn.Linear(4, 2), terms=[])
    tr = _fit_as_error(repair, tmp_path, val_dataloaders=_loader())
    assert "val_loss" in tr.callback_metrics and "val_acc" in tr.callback_metrics
    tr2 = trainer(tmp_path)
    with warnings.catch_warnings():
        _warnings_as_errors()
        (metrics,) = tr2.test(repair, _loader(), verbose=False)
        preds = tr2.predict(repair, _loader())
    assert set(metrics) == {"test_loss", "test_acc"} and len(preds) == 2


class _WithValidation(_Plain):
    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", nn.functional.cross_entropy(self.net(x), y))


def test_a_wrapped_module_with_its_own_validation_step_warns_as_unwrapped(tmp_path):
    for module in (_WithValidation(), CausalRepairModule.wrap(_WithValidation(), terms=[])):
        with pytest.warns(PossibleUserWarning, match="You defined a `validation_step` but have no `val_dataloader`"):
            trainer(tmp_path, max_epochs=1).fit(module, _loader())


def test_a_compiled_repair_module_without_validation_data_fits_under_warnings_as_errors(tmp_path):
    # Lightning sets the compiled wrapper of each step on the module (from_compiled), which hid the descriptor
    torch.manual_seed(0)
    repair = CausalRepairModule(nn.Linear(4, 2), terms=[])
    tr = trainer(tmp_path, max_steps=1)
    with warnings.catch_warnings():
        _warnings_as_errors()
        warnings.simplefilter("ignore", DeprecationWarning)  # torch's own under compile (torch.jit.script_method)
        tr.fit(torch.compile(repair), _loader())  # failed before: PossibleUserWarning raised as an error
    assert callable(repair.validation_step)  # the step again after the fit (Lightning set it back)


def test_a_validation_step_set_to_none_is_kept():
    # Lightning's way to turn a module's validation off, `module.validation_step = None`, still holds (and can be undone)
    repair = CausalRepairModule(nn.Linear(4, 2), terms=[])
    repair.validation_step = None
    assert repair.validation_step is None
    del repair.validation_step
    assert callable(repair.validation_step)
