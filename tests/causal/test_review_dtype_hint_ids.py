"""Review of 4cb711f: the hint for integer inputs ('cast inside the model's forward, or read token
ids with an nn.Embedding') was also given to a model that reads its token ids with an embedding and
fails on another argument's dtype (a float64 forward argument): it sent the user to fix ids that
were read correctly. It is now given only to models without an embedding; a model of category
codes without one keeps it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.forward import dtype_hint


class Tokens(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb, self.lin = nn.Embedding(10, 4), nn.Linear(4, 2)

    def forward(self, ids, weights):
        return self.lin(self.emb(ids).mean(1) * weights)  # weights of float64: torch's dtype error in lin


def test_a_model_that_embeds_its_ids_is_not_told_to_cast_them():
    ids = torch.randint(1, 10, (5, 6), generator=torch.Generator().manual_seed(0))
    weights = torch.rand(5, 4, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="same dtype") as err:
        input_effects(Tokens(), ids, baseline=0, additional_forward_args=(weights,), target=0)
    assert "integer: category codes or token ids" not in str(err.value)


def test_category_codes_without_an_embedding_keep_the_hint():
    err = RuntimeError("mat1 and mat2 must have the same dtype, but got Long and Float")
    hint = dtype_hint(nn.Linear(4, 2), (torch.zeros(3, 4, dtype=torch.long),), err)
    assert hint is not None and "cast inside the model's forward (`x.to(torch.float32)`)" in hint
    assert dtype_hint(Tokens(), (torch.zeros(3, 4, dtype=torch.long),), err) is None
