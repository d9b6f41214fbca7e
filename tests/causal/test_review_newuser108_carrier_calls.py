"""review of newuser108 (990eee7c): the carriers' refusal of a layer run more than once a pass counted the factual
pass's calls only. A layer whose calls depend on the batch (a refinement applied again where the batch's column 0 is all
1, as a solver's step count is read from its batch), run once on ``x`` and twice on ``x_cf``, had the counterfactual
run's last call, the second application's output, patched into the one factual call, answered in silence (largest
``|c_u|`` 0.019 beside a largest ``|Δ|`` of 0.029 on this model; before 990eee7c capture warned that it keeps the last
call, a warning 990eee7c turned off there). It is refused now, naming the counterfactual inputs; a layer run once on
both keeps the hand values."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal import FairnessAudit, Probe
from lightning_causal.causal import AttributeFlip, carrier_unit_effects


class _Refined(nn.Module):
    """``mid`` runs once, and again on its own output where every sample of the batch has column 0 at 1."""

    def __init__(self, refine: bool = True) -> None:
        super().__init__()
        torch.manual_seed(4)
        self.inp, self.mid, self.act, self.head = nn.Linear(4, 4), nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2)
        self.refine = refine

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.mid(self.inp(x)))
        if self.refine and bool((x[:, 0] > 0.5).all()):
            h = self.act(self.mid(h))
        return self.head(h)


def _probe(group: float) -> torch.Tensor:
    x = torch.randn(8, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x[:, 0] = group
    return x


def test_a_layer_run_again_on_the_counterfactual_inputs_is_refused() -> None:
    model, x = _Refined().double().eval(), _probe(0.0)  # once on x, twice on its flip
    with pytest.raises(ValueError, match=r"'mid' to run once per forward pass for its carrier units, but it runs 2 "
                                         r"times on the counterfactual inputs \("):
        carrier_unit_effects(model, x, AttributeFlip(0), "mid", target=1)
    with pytest.raises(ValueError, match=r"runs 2 times on the counterfactual inputs"):
        FairnessAudit(AttributeFlip(0), layers=["mid"], target=1).run(model, Probe(x))
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_a_layer_run_once_on_both_keeps_the_hand_values() -> None:
    model, x = _Refined(refine=False).double().eval(), _probe(0.0)  # once on x and on x_cf
    x_cf = x.clone()
    x_cf[:, 0] = 1.0
    with torch.no_grad():
        p = model(x).softmax(1)[:, 1]
        h_cf = model.mid(model.inp(x_cf))
        hand = torch.stack([model.head(model.act(model.mid(model.inp(x)).index_copy(1, torch.tensor([u]), h_cf[:, [u]])))
                            .softmax(1)[:, 1] - p for u in range(4)], 1)
    torch.testing.assert_close(carrier_unit_effects(model, x, AttributeFlip(0), "mid", target=1), hand, rtol=0,
                               atol=1e-12)
