"""leftovers_s42a: CounterfactualFairnessTerm gave a DUQ head trained with nn.BCELoss beside its class indices, under
distance='logit', the ordinal levels' warning (wrong advice: no ordinal head); FairnessAudit(compare='output') on one
output and a probe without labels read the share of the output above 0 in silence (a softplus output: rates 1.0 in both
groups, a parity difference of 0, no note); and FairnessAudit's own label check named torch.sigmoid(out) to a head
ending in nn.Sigmoid, whose outputs are sigmoids already."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import AttributeFlip, CounterfactualFairnessTerm, FairnessAudit
from lightning_causal.audits import Probe
from tests.audits.test_trial_newuser105_duq_fairness import DUQHead


def _rows(n: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=g)
    x[:, 2] = (torch.rand(n, generator=g) < 0.5).float()
    return x


def _term_warnings(model: nn.Module, y: torch.Tensor) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        CounterfactualFairnessTerm(AttributeFlip(2), distance="logit").loss(model, _rows(32), y)
    return [str(w.message) for w in caught]


class CoralSigmoid(nn.Module):
    """P(rank > k) = sigmoid(s(x) - b_k), b increasing: non-increasing in k in every row (a CORAL head ending in a
    sigmoid)."""

    def __init__(self) -> None:
        super().__init__()
        self.score, self.loss_fn = nn.Linear(3, 1), nn.BCELoss()
        self.register_buffer("bias", torch.tensor([-1.0, 0.0, 1.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.score(x) - self.bias)


def test_a_duq_head_trained_with_bce_gets_no_ordinal_advice_under_the_logit_distance():
    model = DUQHead()
    model.loss_fn = nn.BCELoss()  # DUQ's loss: BCE of the kernel values against the one-hot classes
    y = torch.randint(0, 3, (32,), generator=torch.Generator().manual_seed(1))
    said = _term_warnings(model, y)
    assert not [s for s in said if "level" in s or "CORAL" in s or "rank" in s], said  # before: the levels' warning


def test_a_coral_head_ending_in_a_sigmoid_keeps_its_levels_warning():
    torch.manual_seed(0)
    y = torch.randint(0, 3, (32,), generator=torch.Generator().manual_seed(1))  # ranks 0..2, none beyond
    said = _term_warnings(CoralSigmoid(), y)
    assert any("out.sum(1, keepdim=True)" in s for s in said), said


def _audit(model: nn.Module, probe: Probe) -> tuple[dict, list[str], list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = FairnessAudit(AttributeFlip(2), compare="output").run(model.eval(), probe)
    return result.scalars, result.meta.get("notes", []), [str(w.message) for w in caught]


def test_one_output_compared_without_labels_says_what_its_rates_read_and_warns_where_they_say_nothing():
    torch.manual_seed(0)
    x = _rows()
    model = nn.Sequential(nn.Linear(3, 1), nn.Softplus())
    with torch.no_grad():
        model[0].bias.fill_(3.0)  # every output above 1: no probability either
    assert float(model(x).min()) > 1
    scalars, notes, said = _audit(model, Probe(x))
    assert scalars["positive_rate/group_0"] == scalars["positive_rate/group_1"] == 1.0
    assert any("shares of the output above 0" in n for n in notes)  # before: no note
    told = [s for s in said if "every output lies above 0" in s]
    assert len(told) == 1 and "Probe(x, labels)" in told[0] and "out - t" in told[0]  # before: silent


def test_one_output_on_both_sides_of_0_gets_the_note_and_no_warning():
    torch.manual_seed(0)
    x = _rows()
    model = nn.Linear(3, 1)
    out = model(x).detach().flatten()
    assert bool((out > 0).any()) and bool((out <= 0).any())
    scalars, notes, said = _audit(model, Probe(x))
    group = x[:, 2] == 1  # by hand: the share of the output above 0 in each group
    assert scalars["positive_rate/group_1"] == pytest.approx(float((out[group] > 0).float().mean()))
    assert any("shares of the output above 0" in n for n in notes)
    assert not [s for s in said if "every output lies" in s]


def test_the_audits_ranks_refusal_names_the_sum_of_a_sigmoid_heads_outputs():
    x = _rows()
    y = torch.randint(0, 4, (64,), generator=torch.Generator().manual_seed(1))  # ranks 0..3 beside 3 outputs
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3), nn.Sigmoid()).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="ranks") as refused:
            FairnessAudit(AttributeFlip(2)).run(model, Probe(x, y))
    assert "out.sum(1, keepdim=True)" in str(refused.value)
    assert "torch.sigmoid(out)" not in str(refused.value)  # before: the sigmoid of a sigmoid
