"""The ``unpack_batch=`` that passes a mapping batch's keys by name was written out twice, in the warning of unread keys
(``batches.unread_keys_message``) and in the refusal's advice (``_probe._unpassed_keys_fix``): one builder,
``batches.keys_unpack_batch(..., arguments=)``, writes both (re-read of session 44's change); the words as before."""

import torch
from torch import nn

from lightning_causal.batches import keys_unpack_batch, unread_keys_message
from lightning_causal.callbacks._probe import _unpassed_keys_fix


class _Pair(nn.Module):
    def forward(self, input_ids, pixel_values, attention_mask=None):
        return input_ids


def _batch():
    return {"input_ids": torch.zeros(2, 3, dtype=torch.long), "pixel_values": torch.zeros(2, 3, 4, 4),
            "attention_mask": torch.ones(2, 3), "labels": torch.zeros(2)}


def test_the_two_advices_are_one_builders():
    b = _batch()
    args = {"attention_mask": b["attention_mask"]}
    fix = ("unpack_batch=lambda batch: (batch['input_ids'], batch['labels'], {'attention_mask': batch['attention_mask'], "
           "'pixel_values': batch['pixel_values']})")
    assert keys_unpack_batch(b, ["input_ids"], arguments=["attention_mask", "pixel_values"]) == fix
    assert _unpassed_keys_fix(_Pair(), b, args) == (["input_ids", "pixel_values"], f"`{fix}`")
    said = unread_keys_message(b, args, "The batches", "the audits")
    assert said.endswith(f". If forward needs them, pass `{fix}`"), said
    no_label = {k: v for k, v in b.items() if k != "labels"}
    assert keys_unpack_batch(no_label, ["input_ids"], arguments=["pixel_values"]) == (
        "unpack_batch=lambda batch: (batch['input_ids'], None, {'pixel_values': batch['pixel_values']})")
    assert keys_unpack_batch(no_label, ["input_ids", "pixel_values"]) == (
        "unpack_batch=lambda batch: ((batch['input_ids'], batch['pixel_values']), None, None)")
