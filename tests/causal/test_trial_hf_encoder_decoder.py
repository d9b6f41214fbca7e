"""Encoder-decoder classifiers (BART, T5): their forward reads the end-of-sequence token of the input
ids (the decoder's input is the ids shifted right; the classifier reads the last ``</s>``), so ids
without one are refused by the model itself. Checked against hand-written hook loops in float64."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects, unit_effects

transformers = pytest.importorskip("transformers")

VOCAB, PAD, EOS, MASK = 30, 1, 2, 3


def _bart(layers: int = 1) -> nn.Module:
    """A tiny ``BartForSequenceClassification`` (d_model 16, ``layers`` + ``layers`` layers, 2 heads), float64, eval."""
    torch.manual_seed(0)
    config = transformers.BartConfig(
        vocab_size=VOCAB, d_model=16, encoder_layers=layers, decoder_layers=layers, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=32, decoder_ffn_dim=32, num_labels=3, pad_token_id=PAD, bos_token_id=0, eos_token_id=EOS,
        max_position_embeddings=16, init_std=0.3)
    return transformers.BartForSequenceClassification(config).double().eval()


def _sentences() -> tuple[torch.Tensor, torch.Tensor]:
    """Three right-padded sentences of 7, 5 and 4 tokens, each ending in ``</s>``."""
    torch.manual_seed(1)
    ids = torch.randint(4, VOCAB, (3, 7))
    mask = (torch.arange(7) < torch.tensor([[7], [5], [4]])).long()
    ids[mask == 0] = PAD
    ids[torch.arange(3), mask.sum(1) - 1] = EOS
    return ids, mask


def test_input_layer_with_a_token_baseline_runs_on_bart_and_equals_a_hook_loop():
    """The reference of a token baseline (its embedding) was taken from a full forward pass on ids filled with
    the baseline, which BART refuses ("Each example must contain at least one <eos> token"): ``input_layer=``
    with a token id failed on every encoder-decoder classifier. The pass now stops at the layer."""
    model, (ids, mask) = _bart(), _sentences()
    layer = "model.encoder.embed_tokens"
    effects = input_effects(model, ids, baseline=MASK, target=0, input_layer=layer,
                            additional_forward_args={"attention_mask": mask})
    embed = model.get_submodule(layer)
    with torch.no_grad():
        reference = embed(torch.tensor([MASK]))[0]
        clean = model(input_ids=ids, attention_mask=mask).logits[:, 0]
        expected = torch.zeros(3, 7, dtype=torch.float64)
        for n in range(3):
            for t in range(int(mask[n].sum())):
                def patch(_m, _i, out, t=t):
                    out = out.clone()
                    out[0, t] = reference
                    return out

                handle = embed.register_forward_hook(patch)
                try:
                    expected[n, t] = clean[n] - model(input_ids=ids[n:n + 1], attention_mask=mask[n:n + 1]).logits[0, 0]
                finally:
                    handle.remove()
    torch.testing.assert_close(effects, expected, atol=1e-10, rtol=0)
    assert (effects[mask == 0] == 0).all()
    assert expected.abs().max() > 1e-2


def _t5() -> nn.Module:
    """A tiny ``T5ForSequenceClassification`` (d_model 16, 2 heads of 8, 1 + 1 blocks), float64, eval."""
    torch.manual_seed(0)
    config = transformers.T5Config(vocab_size=VOCAB, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_decoder_layers=1, num_heads=2,
                                   num_labels=3, pad_token_id=0, eos_token_id=EOS, decoder_start_token_id=0)
    return transformers.T5ForSequenceClassification(config).double().eval()


T5_ATTENTION = "transformer.encoder.block.0.layer.0.SelfAttention"


def test_num_heads_on_the_t5_output_projection_is_refused_and_its_input_named():
    """T5 projects its heads with a linear layer named ``o``: ``num_heads`` on it returned 2 "heads" (slices of
    the projected output) silently, and on the whole attention the message named no site (BERT's ``attention.self``
    instead of ``SelfAttention.o:input``)."""
    model, (ids, mask) = _t5(), _sentences()
    ids[mask == 0] = 0
    args = {"attention_mask": mask}
    with pytest.raises(ValueError, match=rf"is an attention output projection.*'{T5_ATTENTION}\.o:input'"):
        unit_effects(model, ids, f"{T5_ATTENTION}.o", num_heads=2, additional_forward_args=args)
    with pytest.raises(ValueError, match=rf"name the site '{T5_ATTENTION}\.o:input'"):
        unit_effects(model, ids, T5_ATTENTION, num_heads=2, additional_forward_args=args)
    cross = "transformer.decoder.block.0.layer.1.EncDecAttention.o"
    with pytest.raises(ValueError, match="is an attention output projection"):
        unit_effects(model, ids, cross, num_heads=2, additional_forward_args=args)
    assert unit_effects(model, ids, f"{T5_ATTENTION}.o:input", num_heads=2, additional_forward_args=args).shape == (3, 2)


def test_a_baseline_that_keeps_the_end_of_sequence_token_equals_replacing_the_other_tokens_by_hand():
    """docs/text.md: on BART a scalar token baseline replaces ``</s>`` and the model refuses the ids; the
    per-position baseline ``where(ids == eos, eos, mask)`` gives each other real token's replacement effect
    (hand-written loop), ``</s>`` and padding exactly 0."""
    model, (ids, mask) = _bart(), _sentences()
    args = {"attention_mask": mask}
    with pytest.raises(ValueError, match="eos"):
        input_effects(model, ids, baseline=MASK, target=1, additional_forward_args=args)
    effects = input_effects(model, ids, baseline=torch.where(ids == EOS, EOS, MASK), target=1, additional_forward_args=args)
    expected = torch.zeros(3, 7, dtype=torch.float64)
    with torch.no_grad():
        clean = model(input_ids=ids, attention_mask=mask).logits[:, 1]
        for n in range(3):
            for t in range(int(mask[n].sum()) - 1):  # the last real token is </s>
                replaced = ids[n:n + 1].clone()
                replaced[0, t] = MASK
                expected[n, t] = clean[n] - model(input_ids=replaced, attention_mask=mask[n:n + 1]).logits[0, 1]
    torch.testing.assert_close(effects, expected, atol=1e-10, rtol=0)
    assert (effects[ids == EOS] == 0).all() and expected.abs().max() > 1e-2


def test_the_default_layers_of_an_encoder_decoder_name_the_stack_they_leave_out():
    """Without ``layers=`` the layer map of BART took the decoder's blocks (more leaves), leaving out the
    encoder, where the tokens enter, without a word. It still takes one stack, and warns naming the other."""
    from lightning_causal.causal import layer_causal_map

    model, (ids, mask) = _bart(layers=2), _sentences()
    keep_eos = torch.where(ids == EOS, EOS, MASK)
    with pytest.warns(UserWarning, match=r"'model\.encoder\.layers\.0'.*also run.*`layers=`"):
        result = layer_causal_map(model, ids, baseline=keep_eos, additional_forward_args={"attention_mask": mask})
    assert result.layers == ["model.decoder.layers.0", "model.decoder.layers.1"]


def test_num_heads_on_a_t5_layer_that_adds_the_residual_is_refused():
    """``layer.0`` of a T5 block returns its input plus the projected attention: slices of it are no heads."""
    model, (ids, mask) = _t5(), _sentences()
    ids[mask == 0] = 0
    with pytest.raises(ValueError, match=rf"it holds an attention output projection.*'{T5_ATTENTION}\.o:input'"):
        unit_effects(model, ids, "transformer.encoder.block.0.layer.0", num_heads=2, additional_forward_args={"attention_mask": mask})
