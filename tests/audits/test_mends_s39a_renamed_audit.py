"""The energies warning told an audit's user that their audit "is of your own class: where it reads the smallest output
... that reading is right" by the class's module, so a subclass of InputEffectAudit that only renames it (the package's
``run``, which reads the largest output) was told its reading was right. It is decided by where ``run`` is defined."""

from __future__ import annotations

import warnings

from lightning_causal import InputEffectAudit
from lightning_causal.audits import Probe
from tests.callbacks.test_trial_newuser87_energies_and_sets import Energies, _data


class _Renamed(InputEffectAudit):
    """A user's subclass that only renames the package's audit: its run is the package's."""


class _OwnRun(InputEffectAudit):
    """A user's subclass with a run of its own (which may read the smallest output itself)."""

    def run(self, model, probe, *, max_batch_size=None):
        return super().run(model, probe, max_batch_size=max_batch_size)


def _energies_warning(audit) -> str:
    x, y = _data()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit.run(Energies(), Probe(x, y))
    (said,) = [str(w.message) for w in caught if "look like energies" in str(w.message)]
    return said


def test_a_subclass_keeping_the_packages_run_is_not_told_its_reading_is_right() -> None:
    said = _energies_warning(_Renamed(ace_values=None, name="mine"))
    assert "'mine'" in said and "of your own class" not in said and "output=lambda out: -out" in said


def test_a_subclass_with_its_own_run_is_told_of_its_own_reading() -> None:
    said = _energies_warning(_OwnRun(ace_values=None, name="mine"))
    assert "Audit 'mine' is of your own class" in said
