"""docs/your_model.md, 'Models that return their own loss': a Hugging Face classifier fine-tuned on the loss it
computes itself, ``CausalRepairModule(model, terms, output="loss", task_loss=lambda loss, y: loss)``, needs an
``unpack_batch=`` that passes a tokenizer batch's labels to ``forward`` (the default calls ``model(input_ids,
attention_mask=...)``, which computes no loss); the documented one trains on HF's own cross-entropy while the term,
``output="logits"``, compares the logits of the swapped rows, its labels following them (review of newuser106)."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from lightning_causal.causal import TokenSwap
from lightning_causal.repair import CausalRepairModule, CounterfactualFairnessTerm


def test_documented_unpack_batch_trains_on_the_models_own_loss():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=16, num_labels=3)
    model = transformers.BertForSequenceClassification(config).eval()  # eval: no dropout, exact comparisons
    ids = torch.randint(7, 32, (6, 5))
    ids[:3, 1] = 5  # rows the swap 5 <-> 6 changes
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.tensor([0, 1, 2, 0, 1, 2])}
    term = CounterfactualFairnessTerm(TokenSwap([(5, 6)]), weight=2.0, output="logits")
    repair = CausalRepairModule(model, [term], output="loss", task_loss=lambda loss, _: loss, unpack_batch=lambda b: (
        b["input_ids"], b["labels"], {"attention_mask": b["attention_mask"], "labels": b["labels"]}))
    total, logs = repair.objective(batch, epoch=0)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=batch["attention_mask"]).logits
    assert torch.allclose(logs["repair/task_loss"], F.cross_entropy(logits, batch["labels"]), atol=1e-6)
    alone = CounterfactualFairnessTerm(TokenSwap([(5, 6)]), output="logits").loss(
        model, ids, batch["labels"], additional_forward_args={"attention_mask": batch["attention_mask"]})
    assert alone.item() > 0
    assert torch.allclose(total.detach(), logs["repair/task_loss"] + 2.0 * alone.detach(), atol=1e-6)
    with pytest.raises(TypeError, match=r"`output='loss'`"):  # the default unpack passes no labels: no loss to select
        CausalRepairModule(model, [term], output="loss", task_loss=lambda loss, _: loss).objective(batch, epoch=0)
