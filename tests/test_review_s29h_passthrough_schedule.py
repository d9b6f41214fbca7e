"""Review of 489ef57e: reading a decorated schedule's signature as its wrapper takes it accepted every function under a
decorator that passes its arguments on (``def wrapper(*args, **kwargs): return fn(*args, **kwargs)``, ``functools.lru_cache``):
a schedule of no argument so decorated was taken at construction, where 09262d08 refuses it before the first epoch's
training, and failed at that epoch's end with Python's own ``TypeError`` (``enabled() takes 0 positional arguments but 1
was given``)."""

import functools

import pytest
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks import CausalAuditCallback


def _logged(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)
    return wrapper


@_logged
def _enabled():
    return True


@functools.lru_cache
def _cached():
    return True


@_logged
def _every_other(epoch):
    return epoch % 2 == 0


@pytest.mark.parametrize("schedule", [_enabled, _cached], ids=["passing-on wrapper", "lru_cache"])
def test_a_schedule_of_no_argument_under_a_decorator_passing_its_arguments_on_is_refused(schedule):
    with pytest.raises(MisconfigurationException, match=r"a callable of the epoch .* but got _(enabled|cached)\(\)$"):
        CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=8, every_n_epochs=schedule)  # before: taken


def test_a_schedule_of_the_epoch_under_such_a_decorator_is_taken():
    callback = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=8, every_n_epochs=_every_other)
    assert [e for e in range(5) if callback.should_audit(e)] == [0, 2, 4]
