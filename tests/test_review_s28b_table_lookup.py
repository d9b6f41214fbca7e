"""Review of 77a4882f: a model that looks its token ids up in a table of its own (``self.table[ids]``, a parameter
``[V, D]``, no ``nn.Embedding``) raises torch's ``IndexError: index 10 is out of bounds for dimension 0 with size 10`` for
an id past its table. Since only an embedding's failed lookup named the argument, ``input_effects(baseline=10)`` and
``CounterfactualFairnessTerm`` with a counterfactual id of 10 let that error through bare, where before they named the
baseline or the counterfactual. Such an error names them again where its index is one of the ids they set; the model's
own ``IndexError`` (an index that is no id set) passes unchanged."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import TokenSwap, input_effects
from lightning_causal.repair import CounterfactualFairnessTerm

IDS = torch.tensor([[1, 2, 3], [4, 5, 6]])


class Table(nn.Module):
    """Token ids 0..9 read from a weight table of its own."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.table, self.head = nn.Parameter(torch.randn(10, 4)), nn.Linear(4, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.table[ids].sum(1))


class OwnIndex(Table):
    """The table, and a scale read from a tensor of its own by the batch's row count: passes of more than 3 rows raise
    torch's ``index 4 is out of bounds``, whatever the ids."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return super().forward(ids) * torch.tensor([1.0, 2.0, 3.0, 4.0])[ids.shape[0]]


def test_a_baseline_id_past_the_models_own_table_is_named() -> None:
    with pytest.raises(ValueError, match=r"^Expected argument `baseline` to hold token ids the model can look up .* got "
                                         r"10: .*IndexError: index 10 is out of bounds"):  # before: the IndexError bare
        input_effects(Table(), IDS, baseline=10)
    model, effects = Table(), input_effects(Table(), IDS, baseline=9, target=1)
    with torch.no_grad():
        by_hand = torch.stack([model(IDS)[:, 1] - model(IDS.index_fill(1, torch.tensor([j]), 9))[:, 1]
                               for j in range(3)], 1)
    torch.testing.assert_close(effects, by_hand)


def test_a_counterfactual_id_past_the_models_own_table_is_named() -> None:
    term = CounterfactualFairnessTerm(TokenSwap([(2, 10)]))
    with pytest.raises(ValueError, match=r"^Expected the counterfactual TokenSwap.*to give token ids the model can look "
                                         r"up, .*IndexError: index 10 is out of bounds.*largest id: 3 in the batch, 10 "
                                         r"in the counterfactuals"):  # before: the IndexError bare
        term.loss(Table(), IDS, None)


def test_the_models_own_index_error_passes_unchanged() -> None:
    with pytest.raises(IndexError, match=r"^index 4 is out of bounds for dimension 0 with size 4$"):  # 4 rows: not an id set
        CounterfactualFairnessTerm(TokenSwap([(2, 5)])).loss(OwnIndex(), IDS, None)
    with pytest.raises(IndexError, match=r"^index 6 is out of bounds"):  # 6 rows (6 is an id of x, not the baseline 0)
        input_effects(OwnIndex(), IDS, baseline=0, max_batch_size=6)
