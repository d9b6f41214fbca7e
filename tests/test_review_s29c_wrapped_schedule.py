"""Review of 09262d08: the schedule's check at construction read a callable's signature through ``functools.wraps``
(the wrapped function's), so a decorator's wrapper that takes the epoch where the function it wraps takes nothing,
``every_n_epochs=enabled`` below, which the callback took and called right before, was refused at construction as
``enabled()``, a callable not taking the epoch."""

import functools

from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks import CausalAuditCallback


def _at_epochs(*wanted):
    def decorate(check):
        @functools.wraps(check)
        def schedule(epoch):
            return epoch in wanted and check()
        return schedule
    return decorate


@_at_epochs(1, 3)
def _enabled():
    return True


def test_a_decorated_schedule_whose_wrapper_takes_the_epoch_is_taken():
    callback = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=8, every_n_epochs=_enabled)  # before: refused
    assert [e for e in range(5) if callback.should_audit(e)] == [1, 3]
