"""The next-token prediction of a causal LM: an ``output=`` callable that reads one position per
probe sample fails with the row-wise hint; the row-wise ways (left padding and ``logits[:, -1]``, or
a wrapper reading each row's last real token from its own mask) agree exactly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects, unit_effects

transformers = pytest.importorskip("transformers")

T = 8
LENGTHS = [8, 5, 3, 6]


def _page_wrapper() -> type:
    """``LastRealToken`` as docs/text.md prints it."""
    page = (Path(__file__).resolve().parents[2] / "docs" / "text.md").read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", page, re.S) if "class LastRealToken" in b]
    ns = {"torch": torch}
    exec(compile(block, "<text.md LastRealToken>", "exec"), ns)  # noqa: S102 - the docs' own example
    return ns["LastRealToken"]


LastRealToken = _page_wrapper()


def _gpt2() -> nn.Module:
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=40, n_positions=16, n_embd=32, n_layer=2, n_head=4,
                                  bos_token_id=1, eos_token_id=1, pad_token_id=0)
    return transformers.GPT2LMHeadModel(cfg).double().eval()


def _padded(side: str) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ids, mask = torch.zeros(len(LENGTHS), T, dtype=torch.long), torch.zeros(len(LENGTHS), T, dtype=torch.long)
    for i, n in enumerate(LENGTHS):
        cols = slice(0, n) if side == "right" else slice(T - n, T)
        ids[i, cols], mask[i, cols] = torch.randint(2, 40, (n,), generator=g), 1
    return ids, mask


def test_an_output_indexed_per_probe_sample_fails_with_the_row_wise_hint():
    model = _gpt2()
    ids, mask = _padded("right")
    last = mask.sum(1) - 1

    def per_sample(out):
        return out.logits[torch.arange(out.logits.shape[0]), last]  # an index of the 4 probe samples

    with pytest.raises(TypeError, match="must compute each row from that row alone"):
        input_effects(model, ids, baseline=1, output=per_sample, additional_forward_args={"attention_mask": mask})


def test_the_last_real_token_right_padded_equals_the_last_position_left_padded():
    model = _gpt2()
    right, right_mask = _padded("right")
    left, left_mask = _padded("left")
    left_args = {"attention_mask": left_mask, "position_ids": (left_mask.cumsum(1) - 1).clamp(min=0)}
    heads_right = unit_effects(LastRealToken(model), right, "lm.transformer.h.0.attn.c_proj:input", num_heads=4, target=5,
                               additional_forward_args={"attention_mask": right_mask})
    heads_left = unit_effects(model, left, "transformer.h.0.attn.c_proj:input", num_heads=4, target=5,
                              output=lambda out: out.logits[:, -1], additional_forward_args=left_args)
    torch.testing.assert_close(heads_right, heads_left, rtol=0, atol=1e-12)
    assert heads_left.abs().max() > 1e-4
    tokens_right = input_effects(LastRealToken(model), right, baseline=1, target=5, additional_forward_args={"attention_mask": right_mask})
    tokens_left = input_effects(model, left, baseline=1, target=5, output=lambda out: out.logits[:, -1],
                                additional_forward_args=left_args)
    for i, n in enumerate(LENGTHS):  # the same tokens, at the other end of the row
        torch.testing.assert_close(tokens_right[i, :n], tokens_left[i, T - n:], rtol=0, atol=1e-12)
        assert (tokens_right[i, n:] == 0).all() and (tokens_left[i, : T - n] == 0).all()


def test_a_language_models_logits_without_output_name_the_last_position():
    ids, mask = _padded("left")
    with pytest.raises(ValueError, match=r"`out\[:, -1\]` for the last position's: a causal language model's next token"):
        input_effects(_gpt2(), ids, baseline=1, additional_forward_args={"attention_mask": mask})
