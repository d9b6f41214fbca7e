"""Grouped-query attention (Llama-style, 4 query heads of 8, 2 key/value heads): ``num_heads`` that cuts a
site into parts of heads warns with the count that gives whole heads (or groups of them)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects

transformers = pytest.importorskip("transformers")

VOCAB, PAD = 30, 0
ATTENTION = "model.layers.0.self_attn"


def _llama() -> nn.Module:
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                                      num_key_value_heads=2, intermediate_size=32, num_labels=2, pad_token_id=PAD,
                                      max_position_embeddings=16)
    return transformers.LlamaForSequenceClassification(config).double().eval()


def _ids() -> tuple[torch.Tensor, dict]:
    torch.manual_seed(1)
    return torch.randint(1, VOCAB, (3, 6)), {"attention_mask": torch.ones(3, 6, dtype=torch.long)}


@pytest.mark.parametrize(("site", "num_heads", "works"), [
    (f"{ATTENTION}.v_proj", 4, 2),          # 2 value heads of 8: the query-head count cut each in halves
    (f"{ATTENTION}.o_proj:input", 8, 4),    # 4 query heads of 8
])
def test_num_heads_that_cut_heads_into_parts_warns_naming_the_count(site, num_heads, works):
    """Before: slices of 4 features were returned as 'heads' without a word (half a head each)."""
    model, (ids, args) = _llama(), _ids()
    with pytest.warns(UserWarning, match=rf"heads of 8 .*num_heads={num_heads} .*slices of 4.*num_heads={works} "):
        assert unit_effects(model, ids, site, num_heads=num_heads, additional_forward_args=args).shape == (3, num_heads)


@pytest.mark.parametrize(("site", "num_heads"), [
    (f"{ATTENTION}.o_proj:input", 4), (f"{ATTENTION}.o_proj:input", 2), (f"{ATTENTION}.v_proj", 2), (f"{ATTENTION}.q_proj", 4),
])
def test_whole_heads_and_groups_of_heads_pass_without_a_warning(site, num_heads):
    import warnings

    model, (ids, args) = _llama(), _ids()
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*parts of heads")
        assert unit_effects(model, ids, site, num_heads=num_heads, additional_forward_args=args).shape == (3, num_heads)


def test_num_heads_on_a_whole_decoder_layer_is_refused_naming_the_heads_site():
    """A Llama decoder layer returns the residual stream (its input plus attention and MLP outputs): its slices
    were returned as 4 'heads' without a word. A module that holds an attention output projection is refused."""
    model, (ids, args) = _llama(), _ids()
    with pytest.raises(ValueError, match=rf"'model\.layers\.0' is not: it holds an attention output projection.*'{ATTENTION}\.o_proj:input'"):
        unit_effects(model, ids, "model.layers.0", num_heads=4, additional_forward_args=args)
    assert unit_effects(model, ids, "model.layers.0", unit_dim=-1, additional_forward_args=args).shape == (3, 32)
