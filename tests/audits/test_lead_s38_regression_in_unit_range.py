"""Final read of 702b1084: a regressor whose outputs lie in [0, 1] (a min-max scaled target) on both sides of 0.5 was
told it is "a binary classifier's probability" with the fix ``out.float().logit(eps=1e-6)`` by FairnessAudit, which had
read it as a regression and compared its outputs (the advice turns cf_gap into logit units), and by
CounterfactualFairnessTerm just before its own regression warning, which names distance='logit' (opposite advice).
Where a regression is read, the one-logit check is not made; a sigmoid-headed classifier is still warned."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from lightning_causal import AttributeFlip, CounterfactualFairnessTerm, FairnessAudit
from lightning_causal.audits import Probe

ONE_LOGIT = "as a binary classifier's probability does"


class _ScaledRegressor(nn.Module):
    """``0.45 + 0.1 x0 + 0.05 s``: outputs in [0.24, 0.64] on the probe, trained by nn.MSELoss."""

    def __init__(self) -> None:
        super().__init__()
        self.lin, self.loss = nn.Linear(4, 1), nn.MSELoss()
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[0.1, 0.0, 0.0, 0.05]]))
            self.lin.bias.fill_(0.45)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


class _SigmoidHead(_ScaledRegressor):
    """The same layer ending in a sigmoid, with no regression loss: a classifier returning its probability."""

    def __init__(self) -> None:
        super().__init__()
        del self.loss
        with torch.no_grad():
            self.lin.weight.mul_(20)
            self.lin.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.lin(x))


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
    x[:, 3] = (torch.arange(64) % 2).float()
    return x, (0.5 + 0.1 * x[:, 0] + 0.05 * x[:, 3]).clamp(0, 1)


def _messages(run) -> list[str]:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        run()
    return [str(w.message) for w in seen]


def test_the_audit_reading_a_regression_does_not_call_its_outputs_probabilities():
    x, y = _data()
    model = _ScaledRegressor()
    for probe in (Probe(x, y), Probe(x)):
        said = _messages(lambda probe=probe: FairnessAudit(AttributeFlip(3), sensitive=3).run(model, probe))
        assert not [m for m in said if ONE_LOGIT in m], said
    r = FairnessAudit(AttributeFlip(3), sensitive=3).run(model, Probe(x, y))
    assert r.meta["compare"] == "output" and abs(r.scalars["cf_gap"] - 0.05) < 1e-6  # |w_s| * |1 - 0|


def test_the_term_gives_its_regression_warning_alone():
    x, y = _data()
    said = _messages(lambda: CounterfactualFairnessTerm(AttributeFlip(3)).loss(_ScaledRegressor(), x, y))
    assert not [m for m in said if ONE_LOGIT in m], said
    assert [m for m in said if "regression target" in m], said


def test_a_classifier_returning_its_probability_is_still_warned():
    x, _ = _data()
    labels = (x[:, 0] > 0).long()
    model = _SigmoidHead()
    assert [m for m in _messages(lambda: FairnessAudit(AttributeFlip(3), sensitive=3).run(model, Probe(x, labels)))
            if ONE_LOGIT in m]
    assert [m for m in _messages(lambda: CounterfactualFairnessTerm(AttributeFlip(3)).loss(model, x, labels))
            if ONE_LOGIT in m]
