"""A tiny Hugging Face BERT classifier (random init, nothing downloaded) and a token batch."""

from __future__ import annotations

import pytest
import torch


def tiny_bert(seed: int = 0, *, layers: int = 2, heads: int = 4, hidden: int = 32, dtype=torch.float64):
    """``BertForSequenceClassification`` with hidden 32, ``layers`` layers, ``heads`` heads, vocab 100,
    3 classes, weights from a private generator, in eval mode."""
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        vocab_size=100, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=2 * hidden, max_position_embeddings=32, num_labels=3,
    )
    model = transformers.BertForSequenceClassification(config)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return model.to(dtype).eval()


def token_batch(n: int = 5, length: int = 7, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids [n, length], attention_mask [n, length])``; sample 0 has two padded positions."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 100, (n, length), generator=g)
    mask = torch.ones(n, length, dtype=torch.long)
    mask[0, -2:] = 0
    ids[0, -2:] = 0
    return ids, mask


def tiny_llama(*, vocab: int = 30, hidden: int = 16, intermediate: int = 12, heads: int = 4, kv_heads: int = 2,
               layers: int = 2, classes: int = 3, seed: int = 0):
    """``LlamaForSequenceClassification`` (pad id 0, so it pools each sequence's last non-pad token),
    float64, weights from ``torch.manual_seed(seed)``, in eval mode."""
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=intermediate,
                                      num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                                      max_position_embeddings=16, num_labels=classes, pad_token_id=0)
    torch.manual_seed(seed)
    return transformers.LlamaForSequenceClassification(config).double().eval()
