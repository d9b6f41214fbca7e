"""TokenSwap as a user meets it: token ids of a compact dtype (int16, int8, uint8) and pairs of
NumPy or tensor integers, checked against a swap written by hand; the messages for a term of
several word pieces, words instead of ids and a chain of pairs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lightning_causal.causal import TokenSwap, counterfactual_fairness_gap
from lightning_causal.repair import CounterfactualFairnessTerm

HE, SHE, HIS, HER = 5, 6, 7, 8


def _by_hand(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    out = ids.clone()
    for a, b in ((HE, SHE), (HIS, HER)):
        out = torch.where((ids == a) & (mask == 1), b, out)
        out = torch.where((ids == b) & (mask == 1), a, out)
    return out


class _Bag(nn.Module):
    """Mean of the real tokens' embeddings, then a linear layer (reads ids of any integer dtype)."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.emb = nn.Embedding(12, 4).double()
        self.out = nn.Linear(4, 2).double()
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        m = attention_mask.unsqueeze(-1).double()
        return self.out((self.emb(ids.long()) * m).sum(1) / m.sum(1))


@pytest.mark.parametrize("dtype", [torch.int16, torch.int8, torch.uint8])
def test_ids_of_a_compact_integer_dtype_are_swapped_as_int64_ones(dtype):
    ids = torch.tensor([[1, HE, HE, 9, SHE, 0], [1, HER, 3, 2, 0, 0], [1, 3, 4, 2, 0, 0]])
    mask = (ids != 0).long()
    swap = TokenSwap([(HE, SHE), (HIS, HER)])
    x_cf = swap(ids.to(dtype))
    assert x_cf.dtype == dtype and torch.equal(x_cf.long(), _by_hand(ids, mask))
    model = _Bag()
    with torch.no_grad():
        p = model(ids, mask).softmax(1)[:, 1]
        q = model(_by_hand(ids, mask), mask).softmax(1)[:, 1]
    args = {"attention_mask": mask}
    gap = counterfactual_fairness_gap(model, ids.to(dtype), swap, target=1, additional_forward_args=args)
    assert gap["mean_abs"] == pytest.approx(float((q - p)[:2].abs().mean()), abs=1e-12)
    clp = CounterfactualFairnessTerm(swap).loss(model, ids.to(dtype), None, additional_forward_args=args)
    want = CounterfactualFairnessTerm(swap).loss(model, ids, None, additional_forward_args=args)
    assert clp.item() == pytest.approx(want.item(), abs=1e-12)


def test_a_swap_to_an_id_the_dtype_cannot_hold_is_refused():
    with pytest.raises(ValueError, match="torch.uint8 cannot hold"):
        TokenSwap([(5, 300)])(torch.tensor([[1, 5]], dtype=torch.uint8))


def test_pairs_of_numpy_and_tensor_integers_are_token_ids():
    ids = torch.tensor([[1, HE, 3, HER]])
    for pairs in ([(np.int64(HE), np.int64(SHE)), (HIS, HER)], [(torch.tensor(HE), torch.tensor(SHE)), (HIS, HER)]):
        swap = TokenSwap(pairs)
        assert swap.pairs == [(HE, SHE), (HIS, HER)] and all(type(t) is int for p in swap.pairs for t in p)
        assert torch.equal(swap(ids), torch.tensor([[1, SHE, 3, HIS]]))


def test_messages_say_what_a_pair_must_be():
    with pytest.raises(ValueError, match="one token id per term .* pair the pieces one to one"):
        TokenSwap([((10, 11), (12, 13))])
    with pytest.raises(ValueError, match="terms of different lengths cannot be swapped in place"):
        TokenSwap([([9], [10, 11])])  # 'man' -> 'wo', '##man'
    with pytest.raises(ValueError, match=r"the pair \(1, 1\) \(one id twice: .*unknown token"):
        TokenSwap([(1, 1)])  # both words unknown to the tokenizer: [UNK] twice
    with pytest.raises(ValueError, match="convert_tokens_to_ids"):
        TokenSwap([("he", "she")])
    with pytest.raises(ValueError, match=r"token ids \[6\] appear more than once"):
        TokenSwap([(5, 6), (6, 7)])
    with pytest.raises(ValueError, match=r"both ways, so give each pair once"):
        TokenSwap([(5, 6), (6, 5)])
    with pytest.raises(ValueError, match=r"the pair \(True, 7\)"):
        TokenSwap([(True, 7)])
