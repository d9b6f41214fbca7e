"""A binary sensitive column blended by mixup / CutMix (0.3 and 0.7 of a 0/1 column) is no categorical
attribute: the flip's refusal said "it holds 4 levels" and pointed to a callable counterfactual of three
or more levels; it now names the mixing and the ways to flip unmixed rows (mix inside `training_step`
with `CausalRepairModule.wrap`, keep the column out of the mixing, audit unmixed batches)."""

import pytest
import torch

from lightning_causal.causal import AttributeFlip


def test_a_mixup_blended_binary_column_is_refused_naming_the_mixing():
    x = torch.tensor([[0.0, 1.0], [1.0, 2.0], [0.0, 3.0], [1.0, 4.0]])
    mixed = 0.7 * x + 0.3 * x.flip(0)  # column 0: 0.3, 0.7, 0.3, 0.7
    assert torch.equal(AttributeFlip(0)(x)[:, 0], torch.tensor([1.0, 0.0, 1.0, 0.0]))
    with pytest.raises(ValueError, match=r"mixup or CutMix.*CausalRepairModule\.wrap") as err:
        AttributeFlip(0)(mixed)
    assert "0.3" in str(err.value) and "three or more levels" not in str(err.value)
    x[1:, 0] = torch.tensor([0.5, 1.0, 0.25])  # two rows blended with others at 0 and 1
    with pytest.raises(ValueError, match=r"mixup or CutMix.*CausalRepairModule\.wrap"):
        AttributeFlip(0)(x)


@pytest.mark.parametrize("values", [(0.0, 1.0), (0.0, 2.0)])
def test_a_three_level_column_still_gets_the_categorical_advice(values):
    x = torch.tensor([[0.0, 1.0], [1.0, 2.0], [2.0, 3.0]])  # levels 0, 1, 2: with codes (0, 2), level 1 lies between
    with pytest.raises(ValueError, match="three or more levels") as err:
        AttributeFlip(0, values=values)(x)
    assert "mixup" not in str(err.value)


def test_a_numeric_column_in_the_codes_range_keeps_the_callable_advice_beside_the_mixing():
    # review of a61f273: a feature min-max scaled to [0, 1] also lies between the codes 0 and 1; the refusal
    # named the mixing only, as if every such column were a mixup blend, and lost the callable counterfactual
    x = torch.tensor([[0.0, 1.0], [0.12, 2.0], [0.5, 3.0], [0.87, 4.0], [1.0, 5.0]])
    with pytest.raises(ValueError, match=r"mixup or CutMix.*numeric column, not blended.*callable counterfactual"):
        AttributeFlip(0)(x)
