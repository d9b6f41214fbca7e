"""The probe check's refusal of a model branching on its batch's mean says "pass one sample at a time", but
``input_effects``, ``unit_effects`` and ``trigger_effect`` refused ``max_batch_size=1`` again with the same words (a
loop): their probe check compared two samples run together with the stacked pass whatever ``max_batch_size``. With
``max_batch_size=1`` every row runs alone, so the probe check lets such a forward pass there
(``check_samples_independent(one_row=True)``), and each sample's numbers are its own (hand loops). A layer whose value in
the whole probe's pass is not a sample's own (the branch before it) is refused by ``unit_effects`` naming one sample per
call, which gives the per-sample model's effects."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import (
    AttributeFlip,
    Trigger,
    counterfactual_fairness_gap,
    input_effects,
    trigger_effect,
    unit_effects,
)
from tests.causal.test_mends_s41a_clean_alone import Branch
from tests.causal.test_mends_s41a_structure_alone import Branch as HiddenBranch
from tests.causal.test_mends_s42a_backdoor_alone import Standardised


def _probe() -> torch.Tensor:
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
    x[:, 0] = x[:, 0].abs() + 0.5
    x[[0, 1], 0] = -0.3  # rows 0 and 1, alone and together, take the x3 branch: the probe check sees them
    x[:, 3] = (torch.arange(8) % 2).float()
    return x


def _alone(model: nn.Module, x: torch.Tensor, layer: nn.Module | None = None, unit: int | None = None) -> torch.Tensor:
    """Class 1's output of each sample run alone (``unit`` of ``layer`` set to 0)."""
    def zero(_m, _i, out):
        out = out.clone()
        out[:, unit] = 0
        return out
    handle = layer.register_forward_hook(zero) if layer is not None else None
    try:
        with torch.no_grad():
            return torch.cat([model(x[i:i + 1]) for i in range(x.shape[0])])[:, 1]
    finally:
        if handle is not None:
            handle.remove()


def test_input_effects_refused_in_batches_and_each_samples_own_alone() -> None:
    model, x = Branch().eval(), _probe()
    with pytest.raises(ValueError, match="one sample at a time"):
        input_effects(model, x, target=1)
    hand = torch.stack([_alone(model, x) - _alone(model, torch.cat([x[:, :j], torch.zeros(8, 1), x[:, j + 1:]], 1))
                        for j in range(4)], 1)
    torch.testing.assert_close(input_effects(model, x, target=1, max_batch_size=1), hand, rtol=0, atol=1e-6)


def test_unit_effects_and_trigger_effect_each_samples_own_alone() -> None:
    model, x = Branch().eval(), _probe()
    hand = torch.stack([_alone(model, x) - _alone(model, x, model.fc, u) for u in range(3)], 1)
    torch.testing.assert_close(unit_effects(model, x, "fc", target=1, max_batch_size=1), hand, rtol=0, atol=1e-6)
    trigger = Trigger(torch.tensor([0.0, 0.0, 1.0, 0.0]), torch.tensor([0.0, 0.0, 2.0, 0.0]), target=1)
    torch.testing.assert_close(trigger_effect(model, x, trigger, max_batch_size=1),
                               _alone(model, trigger.apply(x)) - _alone(model, x), rtol=0, atol=1e-6)
    flipped = x.clone()
    flipped[:, 3] = 1 - flipped[:, 3]
    gap = counterfactual_fairness_gap(model, x, AttributeFlip(3), target=1, compare="output", max_batch_size=1)
    torch.testing.assert_close(gap["delta"], _alone(model, flipped) - _alone(model, x), rtol=0, atol=1e-6)


def test_a_layer_after_the_batch_branch_is_refused_alone_naming_one_sample_per_call() -> None:
    model, x = HiddenBranch().eval(), _probe()
    with pytest.raises(ValueError, match=r"'act' for each sample run alone .*x\[i:i \+ 1\]"):
        unit_effects(model, x, "act", target=1, max_batch_size=1)
    one = torch.cat([unit_effects(model, x[i:i + 1], "act", target=1) for i in range(8)])
    torch.testing.assert_close(one, unit_effects(HiddenBranch(per_sample=True).eval(), x, "act", target=1), rtol=0, atol=1e-6)
    torch.testing.assert_close(unit_effects(model, x, "fc", target=1, max_batch_size=1),  # before the branch: its own
                               unit_effects(HiddenBranch(per_sample=True).eval(), x, "fc", target=1), rtol=0, atol=1e-6)


def test_a_statistic_over_the_batch_is_still_refused_alone() -> None:
    with pytest.raises(ValueError, match="no way out"):
        input_effects(Standardised().eval(), _probe(), target=1, max_batch_size=1)
