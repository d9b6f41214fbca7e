"""Leftovers of session 38: ``check_one_logit`` told a probability from a logit only where the outputs lay on both sides
of 0.5, so a sigmoid model sure of one class on the probe (every probability in (0.5, 1)) was read as logits in
silence: every sample decided positive, the gap squeezed. One side of 0.5 is now told where the outputs come out of a
sigmoid (the autograd graph's last operation, else the model's last layer an ``nn.Sigmoid``); a logit model whose
outputs all lie in (0, 1) is read as it is. ``CounterfactualFairnessTerm`` checked its first call only, and never a
first batch of fewer than 8 rows: it checks the first batch that has enough rows now."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from lightning_causal import FairnessAudit
from lightning_causal.audits import Probe
from lightning_causal.causal import AttributeFlip
from lightning_causal.repair import CounterfactualFairnessTerm

WORDS = "read as a logit by"


def _data(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, 4, generator=torch.Generator().manual_seed(0))
    x[:, 3] = (torch.arange(n) % 2).float()
    return x, (torch.arange(n) % 3 == 0).long()


class _Sure(nn.Module):
    """A linear head whose bias is 3 above 0: every output in (0.5, 1), through nn.Sigmoid or torch.sigmoid, or none."""

    def __init__(self, end: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin, self.end = nn.Linear(4, 1), end
        with torch.no_grad():
            self.lin.weight.mul_(0.3)
            self.lin.bias.fill_(3.0 if end != "logit" else 0.75)
        if end == "module":
            self.act = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.lin(x)
        return self.act(out) if self.end == "module" else torch.sigmoid(out) if self.end == "function" else out * 0.2


def _said(run) -> list[str]:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        run()
    return [str(w.message) for w in seen if WORDS in str(w.message)]


def test_a_sigmoid_model_sure_of_one_class_is_told_by_the_audit():
    x, y = _data()
    model = _Sure("module")
    with torch.no_grad():
        out = model(x)
    assert bool((out > 0.5).all()) and bool((out < 1).all())
    (said,) = _said(lambda: FairnessAudit(AttributeFlip(3), sensitive=3).run(model, Probe(x, y)))
    assert "above 0.5" in said and "nn.Sigmoid" in said and "out.float().logit(eps=1e-6)" in said


def test_logits_of_one_sign_in_the_unit_interval_are_read_as_they_are():
    x, y = _data()
    model = _Sure("logit")
    with torch.no_grad():
        out = model(x)
    assert bool((out > 0).all()) and bool((out < 1).all())
    assert not _said(lambda: FairnessAudit(AttributeFlip(3), sensitive=3).run(model, Probe(x, y)))
    term = CounterfactualFairnessTerm(AttributeFlip(3))
    assert not _said(lambda: term.loss(model, x, y))


def test_the_repair_term_tells_a_functional_sigmoid_by_its_graph():
    x, y = _data()
    (said,) = _said(lambda: CounterfactualFairnessTerm(AttributeFlip(3)).loss(_Sure("function"), x, y))
    assert "above 0.5" in said and "CounterfactualFairnessTerm" in said


def test_the_repair_term_checks_the_first_batch_with_enough_rows():
    x, y = _data()
    term, model = CounterfactualFairnessTerm(AttributeFlip(3)), _Sure("module")
    torch.manual_seed(1)
    with torch.no_grad():  # both sides of 0.5 from here on
        model.lin.bias.fill_(0.0)
        model.lin.weight.mul_(20)
    assert not _said(lambda: term.loss(model, x[:4], y[:4]))  # 4 rows: too few to tell
    assert _said(lambda: term.loss(model, x, y))  # the next batch, of 64, is read
    assert not _said(lambda: term.loss(model, x, y))  # once
