"""Review of the change (git diff 8e7989a): Captum's no-gradient refusal (``baselines.layer_methods.no_gradient_message``)
wrote the causes of a cut gradient out itself, in other words than ``engine.gradient_cuts.gradient_cut_causes`` (the
first-order estimates' and the counterfactual search's): it calls it now."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.baselines import attribute
from lightning_causal.causal.engine.gradient_cuts import CUT_STEPS, DETACHED


class _NoGrad(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        with torch.no_grad():
            return self.fc(x)


def test_captums_no_gradient_refusal_names_the_shared_causes():
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError) as err:
        attribute(_NoGrad().eval(), x, "Saliency", target=0)
    assert f"the forward cuts it ({DETACHED}, or {CUT_STEPS}), so a gradient method" in str(err.value)
