"""Tiny Hugging Face BERT classifiers (random init, nothing downloaded) and padded token batches."""

from __future__ import annotations

import pytest
import torch

VOCAB = 64
PAD, CLS, SEP, MASK = 0, 1, 2, 3


def tiny_bert_classifier(seed: int = 0, *, classes: int = 2, dtype: torch.dtype = torch.float64, scale: float = 0.3):
    """``BertForSequenceClassification``: hidden 32, 2 layers, 2 heads, vocabulary 64, weights from
    a private generator (``scale`` times a standard normal), in eval mode."""
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=32, num_labels=classes, pad_token_id=PAD,
    )
    model = transformers.BertForSequenceClassification(config)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)
    return model.to(dtype).eval()


def token_batch(n: int = 4, length: int = 8, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids [n, length], attention_mask [n, length])``: ``[CLS] w ... w [SEP] [PAD] ...``
    with sample ``i`` padded by ``i % 3`` positions (ids of words in ``[4, VOCAB)``)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, VOCAB, (n, length), generator=g)
    mask = torch.ones(n, length, dtype=torch.long)
    ids[:, 0] = CLS
    for i in range(n):
        end = length - (i % 3)
        ids[i, end - 1] = SEP
        ids[i, end:] = PAD
        mask[i, end:] = 0
    return ids, mask


def hf_classifier_module(model, optimizer=torch.optim.AdamW, **optimizer_options):
    """A LightningModule around a Hugging Face sequence classifier: ``forward(input_ids,
    attention_mask)`` returns the logits, ``training_step`` the model's own loss on a dict batch."""
    import lightning.pytorch as pl

    class HFClassifier(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask=None):
            return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

        def training_step(self, batch, batch_idx):
            return self.model(**batch).loss

        def configure_optimizers(self):
            return optimizer(self.parameters(), **optimizer_options)

    return HFClassifier()


def text_module(seed: int = 0):
    """A LightningModule around a float32 tiny BERT (dropout on) trained on Hugging Face dict batches."""
    return hf_classifier_module(tiny_bert_classifier(seed, classes=2, dtype=torch.float32, scale=0.1).train(), lr=1e-2)


def text_loader(n: int = 32, batch_size: int = 8, seed: int = 0):
    """A shuffling DataLoader of dict batches ``{"input_ids", "attention_mask", "labels"}``."""
    from torch.utils.data import DataLoader

    ids, att = token_batch(n, 8, seed=seed)
    labels = (ids[:, 1] % 2).long()
    items = [{"input_ids": ids[i], "attention_mask": att[i], "labels": labels[i]} for i in range(n)]
    return DataLoader(items, batch_size=batch_size, shuffle=True)
