"""Lead (session 37), final read of 1ca786bb/edb93fd3: FairnessAudit(compare="output") on a regressor of several outputs.

- With no labels in the probe (``Probe(x)``), the group rates were the argmax over the outputs (0.0 and 0.0 where the
  shares of column ``target=`` above 0 are 0.6 and 0.05), with no note: edb93fd3 read the column only where the labels
  showed a regression.
- The raw regression outputs went through ``probabilities`` (its logit checks) before being replaced: two ratings near
  1.5-2.6 were warned of as a Dirichlet's concentrations, and two shares summing to 1 refused as probabilities already.
"""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import FairnessAudit, Probe
from lightning_causal.causal import AttributeFlip


def _regressor() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    x = torch.randn(40, 4)
    x[:, 3] = (torch.arange(40) % 2).float()
    reg = nn.Linear(4, 2)
    with torch.no_grad():
        reg.weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 2.0], [0.0, 1.0, 0.0, -3.0]]))
        reg.bias.copy_(torch.tensor([5.0, 0.5]))
    return reg, x


@pytest.mark.parametrize("labelled", [True, False])
def test_group_rates_read_the_column_compared_with_or_without_labels(labelled):
    reg, x = _regressor()
    out = reg(x).detach()
    probe = Probe(x, out + 0.1 * torch.randn(40, 2, generator=torch.Generator().manual_seed(2))) if labelled else Probe(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = FairnessAudit(AttributeFlip(3), compare="output", target=1).run(reg, probe)
    for g in (0, 1):
        rows = x[:, 3] == g
        assert result.scalars[f"positive_rate/group_{g}"] == pytest.approx(float((out[rows, 1] > 0).double().mean()))
    assert result.scalars["positive_rate/group_0"] == pytest.approx(0.6)  # the argmax read gave 0.0
    if not labelled:
        assert any("no labels to tell a regression" in n for n in result.meta["notes"])


class Shares(nn.Module):
    """A regressor of two shares (a budget split): its rows sum to 1."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 2)

    def forward(self, x):
        return self.lin(x).softmax(1)


def test_raw_regression_outputs_are_not_checked_as_logits():
    torch.manual_seed(0)
    x = torch.randn(40, 4)
    x[:, 0] = (x[:, 0] > 0).float()
    ratings = nn.Linear(4, 2)
    with torch.no_grad():
        ratings.bias.copy_(torch.tensor([1.6, 2.5]))
        ratings.weight.mul_(0.05)
    for model in (ratings, Shares()):
        y = model(x).detach() * 3 + 0.5  # regression labels beyond [0, 1]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = FairnessAudit(AttributeFlip(0), compare="output", target=0).run(model.eval(), Probe(x, y))
        assert not [w for w in caught if "Dirichlet" in str(w.message) or "concentration" in str(w.message)]
        flipped = torch.cat([1 - x[:, :1], x[:, 1:]], 1)
        expected = (model(flipped)[:, 0] - model(x)[:, 0]).abs().mean().item()
        assert result.scalars["cf_gap"] == pytest.approx(expected, rel=1e-5)


class _Said(nn.Module):
    """A linear layer of fixed weights beside the loss that says its task (held, not used in forward)."""

    def __init__(self, weight: list, bias: list, loss: nn.Module) -> None:
        super().__init__()
        self.fc, self.loss = nn.Linear(4, len(bias)), loss
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor(weight))
            self.fc.bias.copy_(torch.tensor(bias))

    def forward(self, x):
        return self.fc(x)


def _Classifier() -> nn.Module:
    """Two logits, and it says it classifies: an nn.CrossEntropyLoss held."""
    return _Said([[0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 1.0]], [3.0, 2.0], nn.CrossEntropyLoss())

def test_an_unlabelled_classifier_that_says_so_keeps_its_decisions_under_compare_output():
    # a304c9d8 read column target= above 0 for every unlabelled model of several outputs: this classifier's positive
    # rates went from its decisions' 0.07/0.57 to 0.99/1.00, its parity gap from 0.50 to 0.01
    torch.manual_seed(0)
    x = torch.randn(200, 4)
    x[:, 3] = (torch.arange(200) % 2).float()
    model = _Classifier()
    out = model(x).detach()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = FairnessAudit(AttributeFlip(3), compare="output", target=1).run(model, Probe(x))
    for g in (0, 1):
        rows = x[:, 3] == g
        assert result.scalars[f"positive_rate/group_{g}"] == pytest.approx(float((out[rows].argmax(1) == 1).double().mean()))
    assert not any("no labels to tell" in n for n in result.meta.get("notes", []))


def _Tagger() -> nn.Module:
    """Three tags, and it says it is multi-label: an nn.BCEWithLogitsLoss held."""
    return _Said([[0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0]], [3.0, -0.5, 0.0], nn.BCEWithLogitsLoss())

def test_an_unlabelled_multi_label_model_is_refused_under_probabilities_and_read_by_its_tag_under_output():
    # the softmax across the tags' logits was read as one decision in silence: positive rates 0.00/0.01 where tag 1's
    # decisions are 0.21/0.78 (with labels the audit already asks for one class per sample)
    torch.manual_seed(0)
    x = torch.randn(200, 4)
    x[:, 3] = (torch.arange(200) % 2).float()
    model = _Tagger()
    with pytest.raises(ValueError, match=r"says it is multi-label.*output=lambda out: out\[:, \[k\]\]"):
        FairnessAudit(AttributeFlip(3), target=1).run(model, Probe(x))
    out = model(x).detach()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = FairnessAudit(AttributeFlip(3), compare="output", target=1).run(model, Probe(x))
    for g in (0, 1):
        rows = x[:, 3] == g
        assert result.scalars[f"positive_rate/group_{g}"] == pytest.approx(float((out[rows, 1] > 0).double().mean()))
    assert any(n.startswith("the model says it is multi-label") for n in result.meta["notes"])
