"""ValidationStepWithData (717e5710) reads Lightning's private ``trainer.fit_loop.epoch_loop.val_loop._data_source``
to tell a fit without validation data. Where those internals are missing or changed (another Lightning version), the
module must have its ``validation_step`` as usual, never fail to read it: a source without ``is_defined`` made
reading the step raise AttributeError, so that Lightning's ``is_overridden`` and every ``module.validation_step``
failed with "'CausalRepairModule' object has no attribute 'validation_step'" and stopped the fit."""

from __future__ import annotations

from types import SimpleNamespace

from lightning.pytorch.trainer.states import TrainerFn, TrainerStatus
from torch import nn

from lightning_causal import CausalRepairModule


def _fitting(source):
    state = SimpleNamespace(fn=TrainerFn.FITTING, status=TrainerStatus.RUNNING)
    return SimpleNamespace(state=state, fit_loop=SimpleNamespace(epoch_loop=SimpleNamespace(
        val_loop=SimpleNamespace(_data_source=source))))


def test_internals_that_changed_give_the_step_not_an_error():
    repair = CausalRepairModule(nn.Linear(4, 2), terms=[])
    for source in (object(), SimpleNamespace(is_defined=None), SimpleNamespace(is_defined=lambda: 1 / 0)):
        vars(repair)["_trainer"] = _fitting(source)
        step = repair.validation_step  # failed before: AttributeError (no is_defined), TypeError, ZeroDivisionError
        assert step is not None and step.__self__ is repair
    for trainer in (SimpleNamespace(state=SimpleNamespace(fn=TrainerFn.FITTING, status=TrainerStatus.RUNNING)),
                    SimpleNamespace(fit_loop=None)):  # no val_loop; no state
        vars(repair)["_trainer"] = trainer
        assert repair.validation_step.__self__ is repair


def test_the_internals_still_read_as_a_fit_without_validation_data():
    repair = CausalRepairModule(nn.Linear(4, 2), terms=[])
    vars(repair)["_trainer"] = _fitting(SimpleNamespace(is_defined=lambda: False))
    assert repair.validation_step is None
    vars(repair)["_trainer"] = _fitting(SimpleNamespace(is_defined=lambda: True))
    assert repair.validation_step.__self__ is repair
