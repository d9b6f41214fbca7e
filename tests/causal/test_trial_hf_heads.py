"""Attention heads of Hugging Face families beyond BERT (GPT-2, DistilBERT, Qwen2, ALBERT): where a
site is refused with ``num_heads``, the message names the site that holds the heads."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects

transformers = pytest.importorskip("transformers")

VOCAB, PAD = 30, 0


def _model(arch: str) -> nn.Module:
    """A tiny classifier (hidden 16, 2 layers, 2 heads), random init, float64, eval."""
    torch.manual_seed(0)
    common = {"vocab_size": VOCAB, "pad_token_id": PAD, "num_labels": 2}
    if arch == "gpt2":
        model = transformers.GPT2ForSequenceClassification(transformers.GPT2Config(n_embd=16, n_layer=2, n_head=2, n_positions=16, **common))
    elif arch == "distilbert":
        model = transformers.DistilBertForSequenceClassification(transformers.DistilBertConfig(
            dim=16, n_layers=2, n_heads=2, hidden_dim=32, max_position_embeddings=16, **common))
    elif arch == "qwen2":
        model = transformers.Qwen2ForSequenceClassification(transformers.Qwen2Config(
            hidden_size=16, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2, intermediate_size=32,
            max_position_embeddings=16, **common))
    else:
        model = transformers.AlbertForSequenceClassification(transformers.AlbertConfig(
            embedding_size=8, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
            max_position_embeddings=16, **common))
    return model.double().eval()


ALBERT = "albert.encoder.albert_layer_groups.0.albert_layers.0"
ATTENTION = {  # the whole attention module, and the site that holds its heads
    "gpt2": ("transformer.h.0.attn", "transformer.h.0.attn.c_proj:input"),
    "distilbert": ("distilbert.transformer.layer.0.attention", "distilbert.transformer.layer.0.attention.out_lin:input"),
    "qwen2": ("model.layers.0.self_attn", "model.layers.0.self_attn.o_proj:input"),
    "albert": (f"{ALBERT}.attention", f"{ALBERT}.attention.dense:input"),
}


@pytest.mark.parametrize("arch", sorted(ATTENTION))
def test_num_heads_on_a_whole_attention_module_names_the_site_of_its_heads(arch):
    """``num_heads`` on GPT-2's ``attn`` (and DistilBERT's ``attention``, Qwen2's ``self_attn``) was refused
    with "name ... Hugging Face BERT's `attention.self`", a module these families do not have; the message
    now names the input of the attention's own output projection, and that site answers."""
    model = _model(arch)
    ids, mask = torch.randint(2, VOCAB, (2, 6)), torch.ones(2, 6, dtype=torch.long)
    args = {"attention_mask": mask}
    whole, heads = ATTENTION[arch]
    with pytest.raises(ValueError, match="name the site " + repr(heads).replace(".", r"\.")):
        unit_effects(model, ids, whole, num_heads=2, additional_forward_args=args)
    assert unit_effects(model, ids, heads, num_heads=2, additional_forward_args=args).shape == (2, 2)


def test_num_heads_on_the_albert_output_projection_is_refused():
    """ALBERT's attention projects its heads with ``attention.dense``; its output has no slice per head
    (before: 2 "heads" were returned silently)."""
    with pytest.raises(ValueError, match=rf"is an attention output projection.*'{ALBERT}\.attention\.dense:input'"):
        unit_effects(_model("albert"), torch.randint(2, VOCAB, (2, 6)), f"{ALBERT}.attention.dense", num_heads=2)


def test_a_value_head_of_grouped_query_attention_is_its_group_of_query_heads():
    """docs/methods.md: under grouped-query attention (Qwen2, 4 query heads, 2 value heads), zeroing value
    head k at ``v_proj`` (``num_heads=2``) equals zeroing query heads 2k and 2k+1 together at ``o_proj:input``."""
    from lightning_causal.causal import Zero, intervene

    torch.manual_seed(0)
    model = transformers.Qwen2ForSequenceClassification(transformers.Qwen2Config(
        vocab_size=VOCAB, pad_token_id=PAD, num_labels=2, hidden_size=16, num_hidden_layers=1, num_attention_heads=4,
        num_key_value_heads=2, intermediate_size=32, max_position_embeddings=16)).double().eval()
    ids, mask = torch.randint(2, VOCAB, (3, 6)), torch.ones(3, 6, dtype=torch.long)
    effects = unit_effects(model, ids, "model.layers.0.self_attn.v_proj", num_heads=2, target=1,
                           additional_forward_args={"attention_mask": mask})
    with torch.no_grad():
        clean = model(input_ids=ids, attention_mask=mask).logits[:, 1]
        for k in range(2):
            with intervene(model, {"model.layers.0.self_attn.o_proj:input": Zero(units=[2 * k, 2 * k + 1], num_heads=4)}):
                both = model(input_ids=ids, attention_mask=mask).logits[:, 1]
            torch.testing.assert_close(effects[:, k], clean - both, atol=1e-10, rtol=0)


def test_the_out_proj_of_a_torch_multihead_attention_is_named_as_the_heads():
    """nn.MultiheadAttention calls its ``out_proj`` as a module while its input site exists: the message for a
    ``TransformerEncoderLayer`` sends the user there, and the site works."""
    model = nn.Sequential(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True, dropout=0.0), nn.Flatten(), nn.Linear(40, 2)).eval()
    with pytest.raises(ValueError, match="slices of it are not heads") as err:
        unit_effects(model, torch.randn(3, 5, 8), "0", num_heads=2)
    assert "'0.self_attn.out_proj:input'" in str(err.value)
    assert unit_effects(model, torch.randn(3, 5, 8), "0.self_attn.out_proj:input", num_heads=2).shape == (3, 2)
