"""An embedding's failed lookup, read by one helper (``token_ids.embedding_lookup_error``) wherever a pass is named.

CounterfactualFairnessTerm caught only ``IndexError`` around its pass, so a counterfactual code that an
``nn.EmbeddingBag`` lacks (on the CPU a ``RuntimeError``: ``Expected i < index_size``) reached the user bare, where an
``nn.Embedding``'s was named; and ``token_errors_named`` (``input_effects``' intervened passes) named ``baseline`` for
any ``IndexError``, also one of the model's own code unrelated to the ids (a table of its own indexed by the row count),
blaming a valid baseline. Only an embedding's failed lookup names the argument now; the model's own error passes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import TokenSwap, input_effects
from lightning_causal.repair import CounterfactualFairnessTerm


class Codes(nn.Module):
    """Two numeric columns and two category codes 0..9 kept as float columns, read by an EmbeddingBag (offsets) or an
    Embedding (mean over the two codes)."""

    def __init__(self, bag: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.bag = bag
        self.codes = nn.EmbeddingBag(10, 2, mode="mean") if bag else nn.Embedding(10, 2)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids = x[:, 2:].long()
        if self.bag:
            flat = ids.reshape(-1)
            looked_up = self.codes(flat, torch.arange(0, flat.numel(), 2))
        else:
            looked_up = self.codes(ids).mean(1)
        return self.head(torch.cat([x[:, :2], looked_up], 1))


class ShiftedBag(nn.Module):
    """Token ids looked up shifted by one in an EmbeddingBag (the readers see no view of the ids: the pass decides)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.bag, self.head = nn.EmbeddingBag(10, 4, mode="sum"), nn.Linear(4, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.bag(ids + 1))


class ShiftedTokenBag(nn.Module):
    """Each token id, shifted by one, a bag of its own (offsets 0, 1, 2, ...): token embeddings ``[N, T, D]`` out of
    ``tokens``, which ``input_layer=`` can name."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.bag, self.tokens, self.head = nn.EmbeddingBag(10, 4), nn.Identity(), nn.Linear(4, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        flat = ids.reshape(-1) + 1
        return self.head(self.tokens(self.bag(flat, torch.arange(flat.numel())).reshape(*ids.shape, 4)).sum(1))


class OwnTable(nn.Module):
    """Reads a scale from a list of its own by the batch's row count: passes of more than 3 rows raise the model's own
    ``IndexError``, whatever the ids."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.head = nn.Embedding(10, 4), nn.Linear(4, 2)
        self.scales = [1.0, 2.0, 3.0]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.emb(ids).sum(1)) * self.scales[ids.shape[0] - 1]


def _table() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.cat([torch.randn(8, 2, generator=g), torch.randint(0, 10, (8, 2), generator=g).float()], 1)


def _code_12(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x[:, :2], torch.full_like(x[:, 2:3], 12.0), x[:, 3:]], 1)


@pytest.mark.filterwarnings("ignore::lightning_causal.causal.engine.token_ids.FractionalCodeWarning")  # the Embedding's column
@pytest.mark.parametrize("bag", [False, True], ids=["Embedding", "EmbeddingBag"])
def test_a_counterfactual_code_the_embedding_lacks_is_named_for_a_bag_as_for_an_embedding(bag: bool) -> None:
    term = CounterfactualFairnessTerm(_code_12)
    with pytest.raises(
            ValueError, match=r"^Expected argument `counterfactual` to give inputs the model can read, .*IndexError: "
                              r"index out of range in (self|an EmbeddingBag).*category code"):
        term.loss(Codes(bag), _table(), None)


def test_a_bag_code_in_range_gives_the_hand_computed_penalty() -> None:
    x, model = _table(), Codes(bag=True)
    set_3 = torch.cat([x[:, :2], torch.full_like(x[:, 2:3], 3.0), x[:, 3:]], 1)
    term = CounterfactualFairnessTerm(lambda t: torch.cat([t[:, :2], torch.full_like(t[:, 2:3], 3.0), t[:, 3:]], 1))
    with torch.no_grad():
        p, q = model(x).softmax(1), model(set_3).softmax(1)
    changed = (x[:, 2] != 3.0).float()  # rows already at code 3 add 0
    expected = (0.5 * (p - q).abs().sum(1) * changed).sum() / 8
    torch.testing.assert_close(term.loss(model, x, None), expected)


def test_token_ids_a_shifted_bag_cannot_look_up_are_named_after_the_term_pass() -> None:
    ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
    term = CounterfactualFairnessTerm(TokenSwap([(2, 9)]))  # 9 + 1 = 10: past the bag's 10 rows
    with pytest.raises(ValueError, match=r"^Expected the counterfactual TokenSwap.*to give token ids the model can look "
                                         r"up, .*IndexError: index out of range in an EmbeddingBag.*largest id: 3 in the "
                                         r"batch, 9 in the counterfactuals"):
        term.loss(ShiftedBag(), ids, None)


def test_a_models_own_error_passes_unchanged_from_the_term() -> None:
    ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
    term = CounterfactualFairnessTerm(TokenSwap([(2, 5)]))  # ids in range; the pass of 2 x 2 rows trips the model
    with pytest.raises(IndexError, match="^list index out of range$"):
        term.loss(OwnTable(), ids, None)


def test_a_models_own_index_error_is_not_blamed_on_a_valid_baseline() -> None:
    ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
    # passes of <= 3 rows run; their outputs scale with the pass's row count, which the stacked-rows check refuses
    with pytest.raises(ValueError, match=r"input_effects stacks in one pass to give what they give alone"):
        input_effects(OwnTable(), ids, baseline=0, max_batch_size=3)
    with pytest.raises(IndexError, match="^list index out of range$"):  # 6 rows: the model's own failure, as it is
        input_effects(OwnTable(), ids, baseline=0)


@pytest.mark.parametrize("input_layer", [None, "tokens"])
def test_a_token_baseline_a_shifted_bag_cannot_look_up_is_named(input_layer: str | None) -> None:
    ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
    with pytest.raises(ValueError, match=r"`baseline` to hold token ids the model can look up .* got 9: .*IndexError: "
                                         r"index out of range in an EmbeddingBag"):
        input_effects(ShiftedTokenBag(), ids, baseline=9, input_layer=input_layer)
    model, effects = ShiftedTokenBag(), input_effects(ShiftedTokenBag(), ids, baseline=8, target=1)  # looks up 9: allowed
    with torch.no_grad():
        clean = model(ids)[:, 1]
        by_hand = torch.stack([clean - model(ids.index_fill(1, torch.tensor([j]), 8))[:, 1] for j in range(3)], 1)
    torch.testing.assert_close(effects, by_hand)
