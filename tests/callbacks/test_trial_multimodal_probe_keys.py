"""A tokenizer's batch with metadata, ``{"input_ids", "attention_mask", "meta", "labels"}``, for
``forward(self, input_ids, meta=None, attention_mask=None)``. The default ``unpack_batch`` passes
the mask and warns that ``meta`` reaches no call; its suggested fix listed ``meta`` only, so the
lambda as printed dropped the mask: a model whose mask is optional then attends to the padding and
every effect changes, silently. The fix now keeps the mask, and the warning names the real call."""

import re
import warnings

import torch
from torch import nn

from lightning_causal.callbacks._probe import probe_from
from lightning_causal.causal import input_effects


class TokensMeta(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb, self.meta, self.head = nn.Embedding(12, 4), nn.Linear(3, 4), nn.Linear(4, 2)

    def forward(self, input_ids, meta=None, attention_mask=None):
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask  # as Hugging Face models do
        w = mask.unsqueeze(-1).float()
        h = (self.emb(input_ids) * w).sum(1) / w.sum(1)
        return self.head(torch.tanh(h + (0 if meta is None else self.meta(meta))))


def test_the_suggested_unpack_batch_keeps_the_attention_mask():
    torch.manual_seed(0)
    ids = torch.randint(1, 12, (6, 5))
    mask = torch.ones(6, 5, dtype=torch.long)
    mask[:3, 3:] = 0
    ids[mask == 0] = 0
    batch = {"input_ids": ids, "attention_mask": mask, "meta": torch.randn(6, 3), "labels": torch.arange(6) % 2}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        probe_from(batch, 6)
    message = next(str(w.message) for w in caught if "passes them to no model call" in str(w.message))
    assert "model(batch['input_ids'], attention_mask=batch['attention_mask'])" in message
    fix = eval(re.search(r"`unpack_batch=(lambda batch: .*?)`", message).group(1))
    probe = probe_from(batch, 6, fix)
    model = TokensMeta().eval()
    effects = input_effects(model, probe.inputs, baseline=11, target=1, additional_forward_args=probe.additional_forward_args)
    reference = input_effects(model, ids, baseline=11, target=1,
                              additional_forward_args={"meta": batch["meta"], "attention_mask": mask})
    torch.testing.assert_close(effects, reference, rtol=0, atol=0)
    assert bool((effects[:3, 3:] == 0).all())  # padded positions: no effect
