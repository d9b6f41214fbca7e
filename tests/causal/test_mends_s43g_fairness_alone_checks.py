"""The fairness estimators' probe checks (final_read_C F1, F2, F4). With ``max_batch_size=1`` the gap, ``world_gaps``,
``FairnessAudit`` and ``carrier_unit_effects`` ran every sample alone with no probe check (or the check's two rows alone
against rows alone), so a model that a batch of one sample erases (``h - h.mean(0)``: each sample alone the constant of
a zero row) was answered 0.0 in silence where ``input_effects`` refuses; the check now runs (``one_row=True``) against
a few samples stacked in one pass. ``carrier_unit_effects`` ran its probe passes with no probe check at all, so a model
depending on its batch got effects mixed across its samples where the gap refuses it. The factual pass's raw outputs
(``factual_outputs``) held the stacked-rows check's rows run alone beside the pass's own."""

import pytest
import torch
from torch import nn

from lightning_causal import FairnessAudit
from lightning_causal.audits.base import Probe
from lightning_causal.causal import (
    AttributeFlip,
    carrier_unit_effects,
    counterfactual_fairness_gap,
    world_gaps,
)
from lightning_causal.causal.scm.fairness import _counterfactual_probabilities

ERASED = r"no way out, it explains that constant"


class BatchMean(nn.Module):
    """Centres its hidden layer over the batch: one sample alone is the constant ``b(relu(0))``."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.act, self.b = nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)
        return self.b(self.act(h - h.mean(0, keepdim=True)))


def _probe() -> torch.Tensor:
    x = torch.randn(40, 5, generator=torch.Generator().manual_seed(3))
    x[:, 4] = (x[:, 4] > 0).float()
    return x


def _set(value: float):
    return lambda z: z.index_fill(1, torch.tensor([4]), value)  # the attribute column set to value


@pytest.mark.parametrize("call", [
    lambda m, x: counterfactual_fairness_gap(m, x, AttributeFlip(4), max_batch_size=1),
    lambda m, x: world_gaps(m, x, {"a0": _set(0.0), "a1": _set(1.0)}, target=1, max_batch_size=1),
    lambda m, x: FairnessAudit(AttributeFlip(4)).run(m, Probe(x), max_batch_size=1),
    lambda m, x: carrier_unit_effects(m, x, AttributeFlip(4), "act", target=1, max_batch_size=1),
], ids=["gap", "world_gaps", "FairnessAudit", "carriers"])
@pytest.mark.parametrize("n", [3, 40])  # 3: its probabilities within the check's 1%, its logits not (raw compared)
def test_a_sample_erased_alone_is_refused_at_one_row_a_pass(call, n) -> None:
    with pytest.raises(ValueError, match=ERASED):  # before: 0.0 (every sample alone the same constant)
        call(BatchMean().eval(), _probe()[:n])


def test_carrier_effects_check_the_probe_as_the_gap_does() -> None:
    model, x = BatchMean().eval(), _probe()
    with pytest.raises(ValueError, match="treat samples independently"):
        world_gaps(model, x, {"a0": _set(0.0), "a1": _set(1.0)}, target=1, max_batch_size=16)
    with pytest.raises(ValueError, match="treat samples independently"):  # before: effects 0.03 mixed across samples
        carrier_unit_effects(model, x, AttributeFlip(4), "act", target=1, max_batch_size=16)


def test_factual_outputs_hold_the_passes_rows_only() -> None:
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2)).eval()
    x, kept = _probe(), []
    p, *_ = _counterfactual_probabilities(model, x, [AttributeFlip(4)], max_batch_size=16, factual_outputs=kept)
    assert [k.shape[0] for k in kept] == [16, 16, 8]  # before: the rows alone of each chunk's check, 1 row each, too
    with torch.no_grad():
        assert torch.equal(torch.cat(kept), model(x)) or torch.allclose(torch.cat(kept), model(x), atol=1e-6)
