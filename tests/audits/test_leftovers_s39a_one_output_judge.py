"""Leftovers of session 38's final reads: the outputs the audits read as what they are not were judged by two copies,
`logit_reads._judge` after a direct `audit.run` and the callback's `warn_outputs_read_as_logits` at its audit epochs, and
they disagreed. A direct run of a probe without labels judged nothing, so a conformal wrapper's 0/1 prediction sets
explained as logits ran in silence (the callback warned of them); the callback's epochs never judged a flow's
log-likelihood compared as a binary logit, so a model that saturated only once trained was warned of by a direct run and
not by the callback. One judge, `logit_reads.judge_outputs`, now serves both. And the energies warning told a user
whose own audit reads the smallest output as the class that "every audit reads its output as logits"."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, FairnessAudit, InputEffectAudit
from lightning_causal.audits import Audit, AuditResult, Probe
from lightning_causal.causal import AttributeFlip
from tests.callbacks.test_trial_newuser87_energies_and_sets import Conformal, Energies, _data


def _said(run, words: str) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run()
    return [str(w.message) for w in caught if words in str(w.message)]


def test_prediction_sets_are_warned_of_on_a_direct_run_without_labels() -> None:
    x, y = _data()
    for probe in (Probe(x), Probe(x, y)):  # without labels: no warning before
        said = _said(lambda probe=probe: InputEffectAudit(ace_values=None).run(Conformal(0.6).eval(), probe), "only 0s and 1s")
        assert len(said) == 1 and "audit 'input_effect'" in said[0] and "s.sum(1, keepdim=True)" in said[0]
    fixed = InputEffectAudit(ace_values=None, output=lambda s: s.sum(1, keepdim=True))
    assert _said(lambda: fixed.run(Conformal(0.6).eval(), Probe(x)), "only 0s and 1s") == []


class _Saturates(pl.LightningModule):
    """One output per sample, 0 (a probability of 0.5) when the callback checks its probe before the first step; its
    training step makes it a log-likelihood of about -12 (every sigmoid below 0.01)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(4, 1)
        with torch.no_grad():
            self.net.weight.zero_(), self.net.bias.zero_()

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, _):
        with torch.no_grad():
            self.net.weight.copy_(torch.tensor([[0.5, 0.0, 0.0, 0.0]]))
            self.net.bias.fill_(-12.0)
        return self.net.weight.sum() * 0

    def validation_step(self, batch, _):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def test_the_callbacks_audit_epochs_and_a_direct_run_give_the_same_warnings(tmp_path) -> None:
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(3))
    x[:, 3] = (x[:, 3] > 0).float()
    y = torch.arange(32) % 2
    data = DataLoader(TensorDataset(x, y), batch_size=len(x))
    audit = lambda: FairnessAudit(AttributeFlip(3), sensitive=3)  # noqa: E731
    words = "compares class probabilities"
    module = _Saturates()
    callback = CausalAuditCallback([audit()], probe_size=len(x), every_n_epochs=1)
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[callback], default_root_dir=tmp_path)
    by_callback = _said(lambda: trainer.fit(module, data, data), words)
    assert callback.audited_epochs == [0]
    direct = _said(lambda: audit().run(module.net, Probe(x, y)), words)
    assert len(direct) == 1 and "below -4.6 on every one of the probe's 32 samples" in direct[0]
    assert by_callback == direct  # the callback's epochs saw none before: its set-up saw the untrained model


class _SmallestIsTheClass(Audit):
    """A user's audit that reads the smallest output as the likeliest class itself."""

    def run(self, model, probe, *, max_batch_size=None):
        with torch.no_grad():
            hits = (model(probe.inputs).argmin(1) == probe.labels).float().mean()
        return AuditResult(self.name, scalars={"accuracy": float(hits)})


def test_a_users_argmin_audit_is_told_its_reading_is_right() -> None:
    x, y = _data()
    (mine,) = _said(lambda: _SmallestIsTheClass(name="argmin").run(Energies(), Probe(x, y)), "look like energies")
    assert "every audit reads" not in mine and "the package's audits and estimators read an output as logits" in mine
    assert "Audit 'argmin' is of your own class: where it reads the smallest output as the likeliest class itself" in mine
    (theirs,) = _said(lambda: InputEffectAudit(ace_values=None).run(Energies(), Probe(x, y)), "look like energies")
    assert "of your own class" not in theirs and "output=lambda out: -out" in theirs
