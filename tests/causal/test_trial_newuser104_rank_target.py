"""A target one beyond the model's outputs: rank K - 1 of an ordinal head's K - 1 cumulative logits ("what would make
it grade 4", asked of CORAL's 4 logits) was refused as out of range with no word of the ordinal head, while the
labels' check (check_class_labels) names it and the ways out; both now say it (checks.ordinal_hint)."""

import pytest
import torch
from torch import nn

from lightning_causal import counterfactual_explanation, input_effects


class Coral(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.score = nn.Linear(3, 1, bias=False)

    def forward(self, x):
        return self.score(x) - torch.tensor([-1.5, -0.5, 0.5, 1.5])


def test_the_rank_beyond_the_cumulative_logits_names_the_ordinal_head():
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    way = r"(?s)but got \[4\] \(the model returns 4 outputs; e\.g\. a class numbered from 1; or 5 ranks of an ordinal head's 4 cumulative logits.*rank classes"
    with pytest.raises(ValueError, match=way):
        counterfactual_explanation(Coral(), x, target_class=4)
    with pytest.raises(ValueError, match=way):
        input_effects(Coral(), x, target=4)


def test_other_targets_out_of_range_say_nothing_of_ranks():
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"but got \[5\] \(the model returns 4 outputs\)$"):
        input_effects(Coral(), x, target=5)
    with pytest.raises(ValueError, match=r"but got \[-1\] \(the model returns 4 outputs\)$"):
        input_effects(Coral(), x, target=-1)
