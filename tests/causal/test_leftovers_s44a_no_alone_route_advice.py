"""The probe check's way out for a forward that depends on its batch says "or pass one sample at a time" only where the
estimator can run every sample alone: the counterfactual search (``counterfactual_explanation``, and
``CounterfactualAudit`` through it) and ``BackdoorAudit``'s probe check have no such route (no ``max_batch_size=1``
that runs each sample alone), so their refusals advised a way out that the user would find refused again."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal import BackdoorAudit, CounterfactualAudit, Probe
from lightning_causal.causal import input_effects
from lightning_causal.causal.structure.counterfactuals import counterfactual_explanation


class _BatchScaled(nn.Module):
    """Each output scaled by the batch's largest |input|: a sample alone gives another output, not a constant."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x) / (1 + x.abs().max())


def _x() -> torch.Tensor:
    return torch.randn(16, 4, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("run", [
    lambda m, x: counterfactual_explanation(m, x, target_class=1),
    lambda m, x: CounterfactualAudit(max_samples=16).run(m, Probe(x, torch.zeros(16, dtype=torch.long))),
    lambda m, x: BackdoorAudit(steps=2, max_samples=16).run(m, Probe(x)),
], ids=["counterfactual_explanation", "CounterfactualAudit", "BackdoorAudit"])
def test_an_estimator_that_runs_no_sample_alone_does_not_advise_it(run):
    with pytest.raises(ValueError, match=r"depends on the batch") as err:
        run(_BatchScaled().eval(), _x())
    assert "one sample at a time" not in str(err.value)
    assert "make the forward per-sample (e.g. `torch.where` per row): " in str(err.value)
    assert "runs no sample alone" in str(err.value)


def test_an_estimator_with_a_route_alone_still_advises_it_and_takes_it():
    with pytest.raises(ValueError, match=r"or pass one sample at a time"):
        input_effects(_BatchScaled().eval(), _x(), target=0)
    assert input_effects(_BatchScaled().eval(), _x(), target=0, max_batch_size=1).shape == (16, 4)
