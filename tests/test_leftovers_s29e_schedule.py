"""A callable schedule object whose class's ``__call__`` is a ``staticmethod`` or ``classmethod`` taking the epoch was
refused by CausalAuditCallback ("... but got EveryOther()"): ``inspect.signature`` reads such an object as ``()`` on
Python 3.11, though ``schedule(epoch)`` binds and works. It is read as it is called; one taking no epoch is still refused."""

import pytest
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks import CausalAuditCallback


class EveryOther:
    @staticmethod
    def __call__(epoch):
        return epoch % 2 == 0


class FromTwo:
    start = 2

    @classmethod
    def __call__(cls, epoch):
        return epoch >= cls.start


class Never:
    @staticmethod
    def __call__():
        return False


def _callback(every_n_epochs):
    return CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=8, every_n_epochs=every_n_epochs)


@pytest.mark.parametrize(("schedule", "audited"), [(EveryOther(), [0, 2, 4]), (FromTwo(), [2, 3, 4])])
def test_a_static_or_class_call_taking_the_epoch_is_taken(schedule, audited):
    callback = _callback(schedule)
    assert [e for e in range(5) if callback.should_audit(e)] == audited


def test_a_static_call_taking_no_epoch_is_still_refused_with_its_signature():
    with pytest.raises(MisconfigurationException, match=r"`every_n_epochs` .* but got Never\(\)"):
        _callback(Never())
