"""newuser87 trial: energy-based classifiers and conformal prediction sets.

An energy model returns one energy per class (lower = more likely, logits = -E). Every audit reads its output as
logits, so without ``output=lambda out: -out`` each sample was explained at its HIGHEST energy (the least likely
class), ``CounterfactualAudit`` counted every correct sample misclassified and flipped it, the softmaxes were of
energies: all silently. The callback's and ``audit_model``'s set-up pass now warns where the probe's labels are the
smallest output's class and not the largest's, naming the fix; logits, the fixed energies and an untrained model that
predicts one class everywhere are not warned of.

A conformal wrapper returning a prediction set (0/1 per class, empty and multi-class sets) was read as logits:
``target=None`` explained the first class of each set (class 0 of an empty set) in silence. It is warned of at set-up,
naming the set size, ``target=k`` and the scores the set is cut from; the calibrated threshold buffer is left as found.
And a one-hot 0/1 output refused where a softmax is taken named ``out.log()`` as the fix, which makes -inf of the 0s:
the refusal names the scores the decisions are made from instead.
"""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, CounterfactualAudit, InputEffectAudit, audit_model
from lightning_causal.audits.logit_reads import (
    LOWER_IS_LIKELIER_ROWS,
    lower_is_likelier,
    set_rows,
)
from lightning_causal.causal.engine.state import check_logits


def _data(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return x, torch.stack([2 * x[:, 0], 2 * x[:, 1], torch.zeros(n)], 1).argmax(1)


class Energies(nn.Module):
    """E_k(x) = -(true logit k): the labels are each row's argmin."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 3)
        with torch.no_grad():
            self.linear.weight.copy_(-torch.tensor([[2.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 0, 0]]))
            self.linear.bias.zero_()

    def forward(self, x):
        return self.linear(x)


def _warnings(model: nn.Module, audits: list, x: torch.Tensor, y: torch.Tensor) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit_model(model, audits, DataLoader(TensorDataset(x, y), batch_size=len(x)), probe_size=len(x))
    return [str(w.message) for w in caught]


def _energy_warnings(messages: list[str]) -> list[str]:
    return [m for m in messages if "look like energies" in m]


def test_energies_read_as_logits_are_warned_of_naming_the_fix() -> None:
    x, y = _data()
    model = Energies().eval()
    said = _energy_warnings(_warnings(model, [InputEffectAudit(ace_values=None), CounterfactualAudit(max_samples=2)], x, y))
    assert len(said) == 1, said  # one warning naming both audits
    assert "'input_effect', 'counterfactual'" in said[0] and "output=lambda out: -out" in said[0]
    assert "SMALLEST output (on half of its samples or more" in said[0]
    # the fix silences it, and a logits model is not warned of
    assert not _energy_warnings(_warnings(model, [InputEffectAudit(ace_values=None, output=lambda out: -out)], x, y))
    logits = nn.Sequential(Energies(), nn.Identity()).eval()
    with torch.no_grad():
        logits[0].linear.weight.neg_()
    assert not _energy_warnings(_warnings(logits, [InputEffectAudit(ace_values=None)], x, y))


def test_the_rule_leaves_untrained_and_small_probes_alone() -> None:
    x, y = _data()
    energies = Energies()(x).detach()
    assert lower_is_likelier(energies, y) == (1.0, 0.0)
    assert lower_is_likelier(energies[: LOWER_IS_LIKELIER_ROWS - 1], y[: LOWER_IS_LIKELIER_ROWS - 1]) is None
    # a model predicting the minority class everywhere: its argmin is the majority class, no information beyond it
    labels = torch.tensor([0] * 16 + [1] * 4)
    constant = torch.tensor([[0.0, 1.0]]).expand(20, 2)
    assert lower_is_likelier(constant, labels) is None
    assert lower_is_likelier(energies, y.float()) == (1.0, 0.0)  # whole-number float labels are classes too
    assert lower_is_likelier(energies, y + 0.5) is None  # a regression target is not


class Conformal(nn.Module):
    """A split-conformal (LAC) set: class k is in the set where softmax_k >= 1 - qhat."""

    def __init__(self, qhat: float) -> None:
        super().__init__()
        self.clf = nn.Linear(4, 3)
        with torch.no_grad():
            self.clf.weight.copy_(torch.tensor([[2.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 0, 0]]))
            self.clf.bias.zero_()
        self.register_buffer("qhat", torch.tensor(qhat))

    def forward(self, x):
        return (self.clf(x).softmax(1) >= 1 - self.qhat).float()


def test_prediction_sets_are_warned_of_and_the_calibrated_buffer_kept() -> None:
    x, y = _data()
    model = Conformal(0.6).eval()
    sets = model(x)
    tied = int((sets.sum(1) != 1).sum())
    assert 0 < tied < len(x) and set_rows(sets) == (tied, len(x))
    said = [m for m in _warnings(model, [InputEffectAudit(ace_values=None)], x, y) if "only 0s and 1s" in m]
    assert len(said) == 1 and "some of the probe's rows hold no 1 or several" in said[0]
    assert "first class of each set" in said[0] and "s.sum(1, keepdim=True)" in said[0]
    assert model.qhat.item() == pytest.approx(0.6)
    # one score per sample, the set size, is not warned of; nor are one-hot decisions (no ties)
    size = [InputEffectAudit(ace_values=None, output=lambda s: s.sum(1, keepdim=True))]
    assert not [m for m in _warnings(model, size, x, torch.zeros(len(x), dtype=torch.long)) if "only 0s and 1s" in m]
    assert set_rows(torch.eye(3)) is None and set_rows(torch.tensor([[0.0, 0.5], [1.0, 0.0]])) is None


def test_one_hot_decisions_refused_as_probabilities_name_no_log() -> None:
    with pytest.raises(ValueError, match="one-hot") as err:
        check_logits(torch.eye(3)[[0, 2, 1, 0]], "FairnessAudit")
    assert "out.log()" in str(err.value) and "-inf" in str(err.value) and "scores the decisions are made from" in str(err.value)
    with pytest.raises(ValueError, match=r"out\.log\(\)`: log-probabilities"):  # probabilities keep their fix
        check_logits(torch.tensor([[0.2, 0.8], [0.5, 0.5]]), "FairnessAudit")


class APSScores(nn.Module):
    """A conformal wrapper's per-class APS non-conformity scores: the probability mass ranked at or above each class,
    lower for likelier classes."""

    def __init__(self) -> None:
        super().__init__()
        self.clf = Conformal(0.0).clf

    def forward(self, x):
        p = self.clf(x).softmax(1)
        ranked, order = p.sort(1, descending=True)
        return torch.empty_like(p).scatter_(1, order, ranked.cumsum(1))


def test_non_conformity_scores_are_warned_of_as_energies() -> None:
    x, y = _data()
    said = _energy_warnings(_warnings(APSScores().eval(), [InputEffectAudit(ace_values=None)], x, y))
    assert len(said) == 1 and "non-conformity scores" in said[0] and "explain the logits they are computed from" in said[0]


class LearnsEnergies(pl.LightningModule):
    """Untrained (zero weights: every class ties) when the callback checks its probe before the first step; its
    training step sets the energies E_k = -(true logit k), as a fit of cross_entropy(-E, y) would."""

    def __init__(self) -> None:
        super().__init__()
        self.net = Energies()
        with torch.no_grad():
            self.net.linear.weight.zero_()

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, _):
        with torch.no_grad():
            self.net.linear.weight.copy_(Energies().linear.weight)
        return (self(batch[0]) * 0).sum() + self.net.linear.weight.sum() * 0

    def validation_step(self, batch, _):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def test_the_callback_warns_at_the_audit_epochs_once_per_fit(tmp_path) -> None:
    """The set-up pass sees the untrained model, whose energies decide nothing: the audit epochs check again, and the
    callback shows the warning once in a fit of two audited epochs."""
    x, y = _data()
    data = DataLoader(TensorDataset(x, y), batch_size=len(x))
    callback = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=len(x), every_n_epochs=1)
    trainer = pl.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[callback], default_root_dir=tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(LearnsEnergies(), data, data)
    assert callback.audited_epochs == [0, 1]
    said = _energy_warnings([str(w.message) for w in caught])
    assert len(said) == 1 and "'input_effect'" in said[0], said
