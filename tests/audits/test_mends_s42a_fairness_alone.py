"""``FairnessAudit`` runs its counterfactual rows and its carrier layers' patched rows under the stacked-rows check, as
``counterfactual_fairness_gap`` and ``carrier_unit_effects`` do (mends_s42a): a model whose output depends on its batch
was answered with the batch's branch for every sample, in silence (carriers 0.177 where each sample alone gives 0.038);
now refused naming ``max_batch_size=1``, with which every row runs alone and gives each sample's own numbers."""

import pytest
import torch
from torch import nn

from lightning_causal.audits import FairnessAudit, Probe
from lightning_causal.causal import AttributeFlip
from lightning_causal.causal.engine.stacked_rows import StackedRowsError
from tests.causal.test_leftovers_s42b_carrier_alone import _probe
from tests.causal.test_mends_s41a_clean_alone import Branch


class Patched(nn.Module):
    """``head(inp(x))``, tripled where more than one row of the batch has unit 0 of ``inp`` unlike its input column 0:
    never in a pass of factual or counterfactual rows, always in a pass of rows patched at unit 0, never for one row."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.inp, self.head = nn.Identity(), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        y = self.head(h)
        return 3 * y if bool((h[:, 0] != x[:, 0]).sum() > 1) else y


def _sex_probe() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
    x[:, 0] = (torch.arange(8) % 2).float()
    y = torch.zeros(8, dtype=torch.long)
    y[::3] = 1
    return x, y


def _carriers_alone(model: Patched, x: torch.Tensor) -> torch.Tensor:
    """Mean |c_u| of ``inp``'s units, each sample and each patched row run alone: the hand loop."""
    flipped = x.clone()
    flipped[:, 0] = 1 - flipped[:, 0]
    with torch.no_grad():
        rows = []
        for i in range(x.shape[0]):
            p0 = model(x[i:i + 1]).softmax(1)[0, 1]
            row = []
            for u in range(4):
                h = x[i:i + 1].clone()
                h[:, u] = flipped[i, u]
                y = model.head(h)
                y = 3 * y if bool((h[:, 0] != x[i:i + 1, 0]).sum() > 1) else y
                row.append(y.softmax(1)[0, 1] - p0)
            rows.append(torch.stack(row))
    return torch.stack(rows).abs().mean(0)


def test_the_audits_counterfactual_rows_are_refused_in_batches_and_each_samples_own_alone() -> None:
    model, x = Branch().eval(), _probe()
    y = torch.zeros(8, dtype=torch.long)
    with pytest.raises(StackedRowsError, match=r"FairnessAudit 'fairness' stacks .*max_batch_size=1"):
        FairnessAudit(AttributeFlip(3), target=1, compare="output").run(model, Probe(x, y))
    result = FairnessAudit(AttributeFlip(3), target=1, compare="output").run(model, Probe(x, y), max_batch_size=1)
    flipped = x.clone()
    flipped[:, 3] = 1 - flipped[:, 3]
    with torch.no_grad():
        own = torch.cat([model(flipped[i:i + 1]) - model(x[i:i + 1]) for i in range(8)])[:, 1]
    torch.testing.assert_close(result.vectors["cf_delta"].float(), own, rtol=0, atol=1e-6)


def test_the_audits_carriers_are_checked_as_carrier_unit_effects_and_each_samples_own_alone() -> None:
    model, (x, y) = Patched().eval(), _sex_probe()
    audit = FairnessAudit(AttributeFlip(0), layers=["inp"], target=1)
    with pytest.raises(StackedRowsError, match=r"FairnessAudit 'fairness' \(the carriers of 'inp'\) .*max_batch_size=1"):
        audit.run(model, Probe(x, y))
    hand = _carriers_alone(model, x)
    assert float(hand[0]) > 0.01  # the case is not empty: unit 0 carries the flip
    got = audit.run(model, Probe(x, y), max_batch_size=1).vectors["carriers/inp"]
    torch.testing.assert_close(got, hand, rtol=0, atol=1e-6)
