"""A direct ``audit.run`` judges whether its output reads as energies (``logit_reads.judged_run``, 3158d479). Its pass
read the model and the probe as ``run(self, model, probe, ...)`` and ``max_batch_size`` as a keyword only, so a user's
own subclass whose ``run`` names them otherwise (``run(self, net, data, ...)``, called with its own keywords) failed
with a TypeError naming parameters it does not have, and ``run(m, p, 32)`` ran the judging pass over the whole probe;
it held the probe's FIRST rows, one class of a probe sorted by class (no warning under ``max_batch_size``), and all of
them without ``max_batch_size`` (a cheap audit of a large probe paid a whole pass more). Now ``run``'s own parameters
are read, and at most ``JUDGED_ROWS`` (or ``max_batch_size``) rows spread over the probe are judged."""

from __future__ import annotations

import torch

from lightning_causal import InputEffectAudit
from lightning_causal.audits import Audit, AuditResult, Probe
from lightning_causal.audits.logit_reads import JUDGED_ROWS
from tests.audits.test_leftovers_s38a_direct_energies import ROWS, _energy_warnings, _Rows
from tests.callbacks.test_trial_newuser87_energies_and_sets import Energies, _data


class _Named(Audit):
    """A user's audit whose ``run`` names its parameters its own way."""

    def run(self, net, data, max_batch_size=None):
        with torch.no_grad():
            return AuditResult(self.name, scalars={"top": float(net(data.inputs).argmax(1).float().mean())})


def test_a_run_naming_its_parameters_its_own_way_runs_and_is_judged():
    x, y = _data()
    said = _energy_warnings(lambda: _Named().run(net=Energies(), data=Probe(x, y)))  # a TypeError before
    assert len(said) == 1 and "'named'" in said[0]
    model = _Rows()
    ROWS.clear()
    assert len(_energy_warnings(lambda: _Named().run(model, Probe(x, y), 24))) == 1
    assert ROWS[-1] == 24  # max_batch_size given positionally: the judging pass holds 24 rows (the whole probe before)


def test_a_probe_sorted_by_class_is_judged_on_rows_spread_over_it():
    x, y = _data()
    order = y.argsort(stable=True)
    x, y = x[order], y[order]
    assert len(y[:20].unique()) == 1  # the first 20 rows: one class, no energies to judge
    said = _energy_warnings(lambda: InputEffectAudit(ace_values=None).run(Energies(), Probe(x, y), max_batch_size=20))
    assert len(said) == 1


def test_a_large_probe_is_judged_on_at_most_judged_rows():
    x, y = _data()
    reps = JUDGED_ROWS // len(x) + 2
    x, y = x.repeat(reps, 1), y.repeat(reps)
    model = _Rows()
    ROWS.clear()
    said = _energy_warnings(lambda: InputEffectAudit(ace_values=None).run(model, Probe(x, y)))
    assert len(said) == 1 and ROWS[-1] == JUDGED_ROWS < len(x)


def test_a_run_of_fewer_rows_a_pass_than_the_rule_needs_is_still_judged():
    """Final read of c7542d74: under max_batch_size=8 or 16 (common for a large model) the judging pass held fewer rows
    than the rule judges on (20), and no run was judged: it holds those 20 rows now."""
    x, y = _data()
    model = _Rows()
    for rows in (8, 16, 19):
        ROWS.clear()
        said = _energy_warnings(lambda rows=rows: InputEffectAudit(ace_values=None).run(model, Probe(x, y), max_batch_size=rows))
        assert len(said) == 1 and ROWS[-1] == 20, (rows, ROWS)
