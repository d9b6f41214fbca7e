"""FairnessAudit under compare='output' on a probe without labels and a one-output model whose outputs all lie at or
below 0 warned that the group rates are 0.0 'whatever the model decides' and advised centring the output on its
threshold. For a binary classifier's logit (an nn.BCEWithLogitsLoss held, hparams.task 'binary') 0 is the threshold and
the rates are its decisions: no warning, the note says so. A model that says nothing, and a sigmoid's probability, are
still warned of."""

import warnings

import torch
from torch import nn

from lightning_causal import AttributeFlip, FairnessAudit
from lightning_causal.audits import Probe


class _Logit(nn.Module):
    def __init__(self, hold_loss: bool = False, task: str | None = None, sigmoid: bool = False) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 1)
        self.act = nn.Sigmoid() if sigmoid else nn.Identity()
        if hold_loss:
            self.loss = nn.BCEWithLogitsLoss()
        if task is not None:
            self.hparams = {"task": task}
        with torch.no_grad():
            self.fc.bias.fill_(-5.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(x))


def _probe() -> Probe:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=g)
    x[:, 2] = (torch.rand(64, generator=g) < 0.5).float()
    return Probe(x)


def _run(model: nn.Module):
    torch.manual_seed(0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = FairnessAudit(AttributeFlip(2), compare="output").run(model.eval(), _probe())
    told = [str(w.message) for w in caught if "every output lies" in str(w.message)]
    return result, told


def test_a_logit_all_below_zero_gives_its_decisions_unwarned():
    for model in (_Logit(hold_loss=True), _Logit(task="binary")):
        result, told = _run(model)
        assert told == []  # before: "0.0 in both groups ... whatever the model decides", centre the output
        assert result.scalars["positive_rate/group_0"] == result.scalars["positive_rate/group_1"] == 0.0
        note = " ".join(result.meta["notes"])
        assert "its output is a logit" in note and "centred" not in note


def test_an_output_not_said_to_be_a_logit_is_still_warned_of():
    _, told = _run(_Logit())  # says nothing: the threshold is not known
    assert len(told) == 1 and "whatever the model decides" in told[0]
    _, told = _run(_Logit(hold_loss=True, sigmoid=True))  # a probability, all below 0.5: rates 1.0 are no decisions
    assert len(told) == 1 and "above 0" in told[0] and "out.logit" in told[0] and "binary classifier" not in told[0]
