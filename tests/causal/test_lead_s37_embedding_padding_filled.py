"""Lead (session 37), final read of e68ef7d0 and 42d4ad26.

- An ``nn.Embedding(padding_idx=0)`` summed over slots by hand (``emb(ids).sum(1)``, a bag built by hand, as
  docs/your_model.md treats it) had every padded slot given the effect of adding the baseline's item, in silence: the
  padding-filled warning looked at ``nn.EmbeddingBag`` readers only.
- A model that IS an ``nn.EmbeddingBag`` was named ``nn.EmbeddingBag 'model'`` by the older refusal of flat ids whose
  count differs from the bags' (42d4ad26 mended only the newer refusal's words).
"""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects


class SummedBag(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.head = nn.Embedding(30, 8, padding_idx=0), nn.Linear(8, 2)

    def forward(self, ids):
        return self.head(self.emb(ids).sum(1))


def _ids() -> torch.Tensor:
    x = torch.randint(1, 30, (16, 6), generator=torch.Generator().manual_seed(0))
    x[:, 3:] = 0
    return x


def test_an_embedding_summed_by_hand_is_warned_of_its_filled_padding():
    with pytest.warns(UserWarning, match=r"fills 48 slot\(s\) holding the padding id 0 of Embedding 'emb'"):
        input_effects(SummedBag().eval(), _ids(), baseline=1, target=1)


def test_the_padding_baseline_or_special_tokens_are_not_warned():
    for kwargs in ({"baseline": 0}, {"baseline": 1, "special_tokens": (0,)}):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            effects = input_effects(SummedBag().eval(), _ids(), target=1, **kwargs)
        assert not [w for w in caught if "padding id" in str(w.message)], kwargs
        assert torch.equal(effects[:, 3:], torch.zeros_like(effects[:, 3:]))  # padding left as it is: no effect


def test_a_model_that_is_a_bag_is_named_as_such_by_the_count_refusal():
    offsets = torch.tensor([0, 2, 2, 3, 4, 6])
    with pytest.raises(ValueError, match=r"the model \(an nn.EmbeddingBag\)") as err:
        input_effects(nn.EmbeddingBag(20, 4).eval(), torch.tensor([7, 3, 13, 5, 9, 7, 1]), baseline=0,
                      additional_forward_args=(offsets,), target=1)
    assert "'model'" not in str(err.value)
