"""The layer causal map of a right-padded GPT-2 reads its blocks at the real positions only: the same
sentences padded to another length give the same map, and ``||Δ||`` equals a hand-written hook loop
over the real positions."""

from __future__ import annotations

import pytest
import torch

from lightning_causal.causal import layer_causal_map

transformers = pytest.importorskip("transformers")

VOCAB, PAD, UNK = 30, 0, 1
BLOCKS = ["transformer.h.0", "transformer.h.1"]


def _gpt2():
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=VOCAB, n_embd=16, n_layer=2, n_head=2, n_positions=16, pad_token_id=PAD, num_labels=2)
    return transformers.GPT2ForSequenceClassification(config).double().eval()


def _sentences(length: int):
    """Four right-padded sentences of 7, 4, 6 and 3 tokens (ids 2..), padded with PAD to ``length``."""
    g = torch.Generator().manual_seed(0)
    ids, mask = torch.full((4, length), PAD), torch.zeros(4, length, dtype=torch.long)
    for i, n in enumerate([7, 4, 6, 3]):
        ids[i, :n], mask[i, :n] = torch.randint(2, VOCAB, (n,), generator=g), 1
    return ids, mask


def test_padding_the_probe_further_changes_no_part_of_the_map():
    """A padded position's hidden state moves when a real token does (a padded query attends to the
    real keys); counted in the profiles, it changed the CKA with the padded length (0.927 -> 0.917 on
    a tiny GPT-2 for 5 more pad columns)."""
    model = _gpt2()
    maps = []
    for length in (8, 12):
        ids, mask = _sentences(length)
        maps.append(layer_causal_map(model, ids, layers=BLOCKS, baseline=UNK, threshold=1.0,
                                     additional_forward_args={"attention_mask": mask}))
    short, long = maps
    torch.testing.assert_close(short.cka, long.cka, atol=1e-10, rtol=0)
    torch.testing.assert_close(short.response, long.response, atol=1e-10, rtol=0)
    for node in BLOCKS:
        torch.testing.assert_close(short.group_effects[node], long.group_effects[node][:8], atol=1e-10, rtol=0)
        assert torch.equal(long.group_effects[node][8:], torch.zeros(4, dtype=long.group_effects[node].dtype))


def test_block_responses_equal_a_hook_loop_over_the_real_positions():
    model = _gpt2()
    ids, mask = _sentences(8)
    got = layer_causal_map(model, ids, layers=BLOCKS, baseline=UNK, threshold=1.0, additional_forward_args={"attention_mask": mask})
    modules = dict(model.named_modules())

    def blocks(x):
        seen = {}
        handles = [modules[b].register_forward_hook(lambda _m, _i, out, b=b: seen.__setitem__(b, out[0] if isinstance(out, tuple) else out))
                   for b in BLOCKS]
        with torch.no_grad():
            model(input_ids=x, attention_mask=mask)
        for h in handles:
            h.remove()
        return seen

    clean, real = blocks(ids), mask.bool()
    for p in range(ids.shape[1]):
        x = ids.clone()
        x[real[:, p], p] = UNK
        moved = blocks(x)
        for b in BLOCKS:
            norms = ((clean[b] - moved[b]) * mask[..., None]).flatten(1).norm(dim=1)
            expected = norms[real[:, p]].mean() if real[:, p].any() else torch.tensor(0.0, dtype=torch.float64)
            torch.testing.assert_close(got.group_effects[b][p], expected, atol=1e-10, rtol=0)
