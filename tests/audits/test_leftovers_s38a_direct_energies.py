"""Energies (lower = likelier) read as logits are warned of on a direct ``audit.run(model, probe)`` of a probe with
labels, once per run, in the callback's words (``logit_reads.warn_read_as_logits``, one rule for both paths). Before,
only the callback's audit epochs and ``audit_model`` judged the outputs: a direct run explained each sample at its
HIGHEST energy, the least likely class, in silence."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CaptumBaseline, InputEffectAudit, UnitImportanceAudit, audit_model
from lightning_causal.audits import Probe
from lightning_causal.audits.logit_reads import LOWER_IS_LIKELIER_ROWS
from tests.callbacks.test_trial_newuser87_energies_and_sets import Energies, _data


def _energy_warnings(run) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run()
    return [str(w.message) for w in caught if "look like energies" in str(w.message)]


def _logits() -> nn.Module:
    model = Energies()
    with torch.no_grad():
        model.linear.weight.neg_()
    return model


@pytest.mark.parametrize("make", [lambda: InputEffectAudit(ace_values=None), lambda: UnitImportanceAudit(["linear"]),
                                  lambda: CaptumBaseline(methods=("Saliency",))])
def test_a_direct_run_with_labels_warns_of_energies_once(make):
    x, y = _data()
    audit = make()
    said = _energy_warnings(lambda: audit.run(Energies(), Probe(x, y)))
    assert len(said) == 1 and f"audit {audit.name!r}" in said[0] and "output=lambda out: -out" in said[0]
    # the fix, a logits model, a probe without labels or of fewer rows than the rule judges on: no warning
    fixed = make()
    fixed.output = lambda out: -out
    assert not _energy_warnings(lambda: fixed.run(Energies(), Probe(x, y)))
    assert not _energy_warnings(lambda: make().run(_logits(), Probe(x, y)))
    assert not _energy_warnings(lambda: make().run(Energies(), Probe(x)))
    few = LOWER_IS_LIKELIER_ROWS - 1
    assert not _energy_warnings(lambda: make().run(Energies(), Probe(x[:few], y[:few])))


class _Twice(InputEffectAudit):
    """A subclass whose ``run`` calls its parent's: one run, judged once."""

    def run(self, model, probe, *, max_batch_size=None):
        return super().run(model, probe, max_batch_size=max_batch_size)


def test_a_subclass_calling_its_parents_run_is_judged_once_and_audit_model_once():
    x, y = _data()
    assert len(_energy_warnings(lambda: _Twice(ace_values=None).run(Energies(), Probe(x, y)))) == 1
    # audit_model judges all its audits in one pass; their runs do not judge again
    data = DataLoader(TensorDataset(x, y), batch_size=len(x))
    said = _energy_warnings(lambda: audit_model(Energies(), [InputEffectAudit(ace_values=None), _Twice(ace_values=None, name="twice")],
                                                data, probe_size=len(x)))
    assert len(said) == 1 and "'input_effect', 'twice'" in said[0]


ROWS: list[int] = []  # the rows of each pass (a list the model held would be restored by the audits: audit_mode)


class _Rows(Energies):
    """Energies that record how many rows each pass held."""

    def forward(self, x):
        ROWS.append(int(x.shape[0]))
        return super().forward(x)


def test_the_judging_pass_holds_max_batch_size_rows_and_leaves_the_model_as_found():
    x, y = _data()
    model = _Rows().train()
    ROWS.clear()
    said = _energy_warnings(lambda: InputEffectAudit(ace_values=None).run(model, Probe(x, y), max_batch_size=24))
    assert len(said) == 1 and ROWS[-1] == 24  # the judging pass, after the run's: 24 rows spread over the probe
    assert model.training and [p.grad for p in model.parameters()] == [None, None]  # train mode restored, no gradient
