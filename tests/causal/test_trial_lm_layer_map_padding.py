"""The layer map of a left-padded decoder does not depend on how far its probe is padded: the
input's relative response (and the gain of the edge out of ``<input>``) counts the real tokens only."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_causal.causal import layer_causal_map

transformers = pytest.importorskip("transformers")

V = 40
LENGTHS = [8, 5, 3, 6, 7, 4]


def _batch(width: int) -> tuple[torch.Tensor, dict]:
    g = torch.Generator().manual_seed(3)
    tokens = [torch.randint(2, V, (n,), generator=g) for n in LENGTHS]
    ids = torch.zeros(len(LENGTHS), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, t in enumerate(tokens):  # left padding
        ids[i, width - len(t):], mask[i, width - len(t):] = t, 1
    return ids, {"attention_mask": mask, "position_ids": (mask.cumsum(1) - 1).clamp(min=0)}


def _last_logit(out) -> torch.Tensor:
    return out.logits[:, -1, 5:6]


def test_left_padding_to_another_length_changes_no_part_of_the_map():
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=V, n_positions=16, n_embd=32, n_layer=2, n_head=4,
                                  bos_token_id=1, eos_token_id=1, pad_token_id=0)
    model = transformers.GPT2LMHeadModel(cfg).double().eval()
    maps = [layer_causal_map(model, ids, layers=["transformer.h.0", "transformer.h.1"], baseline=1, output=_last_logit,
                             additional_forward_args=args) for ids, args in (_batch(8), _batch(11))]
    short, long = maps
    assert short.edges[0][0] == "<input>" and [e[:2] for e in short.edges] == [e[:2] for e in long.edges]
    for a, b in zip(short.edge_stats, long.edge_stats):
        assert a.keys() == b.keys()
        for key in a:
            assert math.isclose(a[key], b[key], rel_tol=1e-9), (key, a[key], b[key])
    assert math.isclose(short.meta["input_response"], long.meta["input_response"], rel_tol=1e-9)
    # by hand: one replaced token moves the one-hot ids by √2, a sentence of n real tokens has norm √n
    expected = math.sqrt(2) / (sum(math.sqrt(n) for n in LENGTHS) / len(LENGTHS))
    assert math.isclose(long.meta["input_response"], expected, rel_tol=1e-6)  # the norms are float32
