"""Trial (repair): dict batches of token ids whose forward arguments the model does not take."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.nn import functional as F

from lightning_causal import CausalRepairModule, CounterfactualFairnessTerm
from lightning_causal.causal import TokenSwap


class _Bag(nn.Module):
    """Token ids -> 2 logits, masked mean of embeddings; its forward takes no token_type_ids."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.out = nn.Embedding(20, 4), nn.Linear(4, 2)

    def forward(self, input_ids, attention_mask=None):
        m = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        h = (self.emb(input_ids) * m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim=True)
        return self.out(h)


class _Module(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = _Bag()

    def forward(self, input_ids, attention_mask=None):
        return self.net(input_ids, attention_mask)

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self(batch["input_ids"], batch["attention_mask"]), batch["labels"])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _batch():
    ids = torch.tensor([[1, 2, 3, 0], [4, 2, 5, 6]])
    return {"input_ids": ids, "attention_mask": (ids != 0).long(), "token_type_ids": torch.zeros_like(ids),
            "labels": torch.tensor([0, 1])}


@pytest.mark.parametrize("wrapped", [False, True])
def test_a_forward_argument_the_model_does_not_take_is_named_with_an_unpack_batch_fix(wrapped):
    term = CounterfactualFairnessTerm(TokenSwap([(2, 3)]))
    module = CausalRepairModule.wrap(_Module(), [term]) if wrapped else CausalRepairModule(_Bag(), [term])
    with pytest.raises(MisconfigurationException, match=r"does not take 'token_type_ids'.*unpack_batch=lambda b: "
                       r"\(b\['input_ids'\], b\['labels'\], \{'attention_mask': b\['attention_mask'\]\}\)"):
        module.objective(_batch())
    fixed = (CausalRepairModule.wrap(_Module(), [term], unpack_batch=lambda b: (b["input_ids"], b["labels"], {"attention_mask": b["attention_mask"]}))
             if wrapped else
             CausalRepairModule(_Bag(), [term], unpack_batch=lambda b: (b["input_ids"], b["labels"], {"attention_mask": b["attention_mask"]})))
    total, logs = fixed.objective(_batch())
    assert torch.isfinite(total) and "repair/counterfactual_fairness" in logs
