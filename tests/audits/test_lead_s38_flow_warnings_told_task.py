"""Final read of 48d5d808/e3b531e0/39d19b5e: the flow warnings fired on ordinary models that say their task. A
rare-event classifier holding nn.BCEWithLogitsLoss, whose bias starts at the class prior (every probability below 0.01
on the probe), was told its logit is a log-likelihood and to pass compare='output' (which would swap a right comparison
of probabilities for one of logits); a classifier returning ``(logits, confidence)`` whose logits are as wide as its
input was told its logits are a flow's latent. A model that says its task is read as it says; a flow still warned."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from lightning_causal import AttributeFlip, FairnessAudit, InputEffectAudit, audit_model
from lightning_causal.audits import Probe


class _RareEvents(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin, self.loss = nn.Linear(4, 1), nn.BCEWithLogitsLoss()
        with torch.no_grad():
            self.lin.weight.fill_(0.1)
            self.lin.bias.fill_(-7.0)  # the class prior of a fraud model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


class _WithConfidence(nn.Module):
    """4 features, 4 classes: ``(logits [N, 4], confidence [N])``."""

    def __init__(self, says: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(4, 4)
        if says:
            self.loss = nn.CrossEntropyLoss()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.lin(x)
        return logits, logits.softmax(1).amax(1)


def _said(run, words: str) -> list[str]:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        run()
    return [str(w.message) for w in seen if words in str(w.message)]


def test_a_rare_event_classifier_that_says_so_is_not_told_its_logit_is_a_log_likelihood():
    x = torch.randn(200, 4, generator=torch.Generator().manual_seed(0))
    x[:, 3] = (torch.arange(200) % 2).float()
    y = torch.zeros(200, dtype=torch.long)
    y[:3] = 1
    words = "per-sample log-likelihood"
    assert not _said(lambda: FairnessAudit(AttributeFlip(3), sensitive=3).run(_RareEvents(), Probe(x, y)), words)
    unsaid = _RareEvents()
    del unsaid.loss  # says nothing: the shape of its outputs alone is read, and the warning says what to do if so
    said = _said(lambda: FairnessAudit(AttributeFlip(3), sensitive=3).run(unsaid, Probe(x, y)), words)
    assert said and "a rare-event classifier's logit is read rightly" in said[0]


def test_logits_as_wide_as_the_input_of_a_model_that_says_it_classifies_are_no_flow_latent():
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(1))
    words = "normalizing flow's `(z, log_det)`"
    audit = InputEffectAudit(ace_values=None, output=0)
    assert not _said(lambda: audit_model(_WithConfidence(says=True), [audit], Probe(x), probe_size=32), words)
    said = _said(lambda: audit_model(_WithConfidence(says=False), [InputEffectAudit(ace_values=None, output=0)],
                                     Probe(x), probe_size=32), words)
    assert said and "are read rightly: nothing to do" in said[0]


class _ElboHolder(nn.Module):
    """A per-sample log-likelihood (about -10) of a model holding nn.BCEWithLogitsLoss for its reconstruction, as a
    Bernoulli VAE does: it says "multilabel", and its output is no logit."""

    def __init__(self) -> None:
        super().__init__()
        self.lin, self.recon = nn.Linear(4, 1), nn.BCEWithLogitsLoss(reduction="none")
        with torch.no_grad():
            self.lin.weight.fill_(0.5)
            self.lin.bias.fill_(-10.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


class _SigmoidCouplingFlow(nn.Module):
    """``(z, log_det)`` of an affine flow whose scale net ends in nn.Sigmoid (the last module registered)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.scale = nn.Sequential(nn.Linear(4, 4), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.scale(x * torch.tensor([1.0, 0.0, 1.0, 0.0]))
        return x * (1 + s), torch.log1p(s).sum(1)


def test_weak_signs_of_a_task_do_not_silence_the_flow_warnings():
    """Second final read of ae3731b2: label_task answers "multilabel" from a last nn.Sigmoid or a held
    nn.BCEWithLogitsLoss, which a flow's coupling nets and a VAE's reconstruction loss give: both warnings went quiet."""
    x = torch.randn(200, 4, generator=torch.Generator().manual_seed(0))
    x[:, 3] = (torch.arange(200) % 2).float()
    y = (torch.arange(200) % 3 == 0).long()
    assert _said(lambda: FairnessAudit(AttributeFlip(3), sensitive=3).run(_ElboHolder(), Probe(x, y)),
                 "per-sample log-likelihood")
    assert _said(lambda: audit_model(_SigmoidCouplingFlow(), [InputEffectAudit(ace_values=None, output=0)],
                                     Probe(x[:32]), probe_size=32), "normalizing flow's `(z, log_det)`")
