"""The newuser13 trial: Hugging Face families beyond BERT (DistilBERT, RoBERTa, ELECTRA, DeBERTa-v2, a GPT-2
classifier right and left padded, ResNet and ConvNeXt on pixel_values), each from a tiny random config in float64.
One head effect (zeroing a head's columns of the attention output projection's input), one MLP neuron and one token
effect per model equal a brute-force hook or replacement; word-embedding interventions equal token replacement
except with the pad id on the models that read it elsewhere (docs/text.md)."""

from __future__ import annotations

import pytest
import torch

from lightning_causal.causal import input_effects, unit_effects

T = pytest.importorskip("transformers")
_ = (T.DistilBertForSequenceClassification, T.RobertaForSequenceClassification, T.ElectraForSequenceClassification,
     T.DebertaV2ForSequenceClassification, T.GPT2ForSequenceClassification)  # lazy imports at collection

PAD = {"roberta": 1}
COMMON = {"vocab_size": 100, "num_labels": 2}


def _text(arch: str):
    """(model, output projection whose input holds the 4 heads, MLP layer, word embeddings)."""
    torch.manual_seed(0)
    pad = PAD.get(arch, 0)
    if arch == "distilbert":
        model = T.DistilBertForSequenceClassification(T.DistilBertConfig(
            dim=32, n_layers=2, n_heads=4, hidden_dim=64, max_position_embeddings=32, pad_token_id=pad, **COMMON))
        names = ("distilbert.transformer.layer.0.attention.out_lin", "distilbert.transformer.layer.1.ffn.lin1",
                 "distilbert.embeddings.word_embeddings")
    elif arch in ("roberta", "electra"):
        config = (T.RobertaConfig(max_position_embeddings=40) if arch == "roberta"
                  else T.ElectraConfig(embedding_size=16, max_position_embeddings=32))
        config.update({"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
                       "pad_token_id": pad, **COMMON})
        model = (T.RobertaForSequenceClassification if arch == "roberta" else T.ElectraForSequenceClassification)(config)
        names = (f"{arch}.encoder.layer.0.attention.output.dense", f"{arch}.encoder.layer.1.intermediate",
                 f"{arch}.embeddings.word_embeddings")
    elif arch == "deberta":
        model = T.DebertaV2ForSequenceClassification(T.DebertaV2Config(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, max_position_embeddings=32,
            pad_token_id=pad, relative_attention=True, position_buckets=16, max_relative_positions=32,
            pos_att_type=["p2c", "c2p"], **COMMON))
        names = ("deberta.encoder.layer.0.attention.output.dense", "deberta.encoder.layer.1.intermediate",
                 "deberta.embeddings.word_embeddings")
    else:
        model = T.GPT2ForSequenceClassification(T.GPT2Config(
            n_embd=32, n_layer=2, n_head=4, n_positions=32, pad_token_id=pad, bos_token_id=2, eos_token_id=2, **COMMON))
        names = ("transformer.h.0.attn.c_proj", "transformer.h.1.mlp.act", "transformer.wte")
    return model.double().eval(), *names


def _batch(arch: str, left: bool):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 100, (3, 8), generator=g)
    mask = torch.ones(3, 8, dtype=torch.long)
    cut = slice(0, 2) if left else slice(6, 8)
    ids[1, cut], mask[1, cut] = PAD.get(arch, 0), 0
    return ids, mask


CASES = [("distilbert", False), ("roberta", False), ("electra", False), ("deberta", False), ("gpt2", False), ("gpt2", True)]


@pytest.mark.parametrize(("arch", "left"), CASES)
def test_a_head_a_neuron_and_a_token_equal_brute_force(arch, left):
    model, proj, mlp, _ = _text(arch)
    ids, mask = _batch(arch, left)
    args = {"attention_mask": mask}

    def logit(x=ids):
        with torch.no_grad():
            return model(input_ids=x, attention_mask=mask).logits[:, 1]

    def zero_head_2(module, inputs):
        x = inputs[0].clone()
        x[..., 16:24] = 0
        return (x,)

    def zero_neuron_5(module, inputs, out):
        out = out.clone()
        out[..., 5] = 0
        return out

    clean = logit()
    heads = unit_effects(model, ids, f"{proj}:input", num_heads=4, target=1, additional_forward_args=args)
    handle = model.get_submodule(proj).register_forward_pre_hook(zero_head_2)
    torch.testing.assert_close(heads[:, 2], clean - logit(), atol=1e-12, rtol=0)
    handle.remove()
    neurons = unit_effects(model, ids, mlp, unit_dim=-1, target=1, additional_forward_args=args)
    handle = model.get_submodule(mlp).register_forward_hook(zero_neuron_5)
    torch.testing.assert_close(neurons[:, 5], clean - logit(), atol=1e-12, rtol=0)
    handle.remove()
    tokens = input_effects(model, ids, baseline=4, target=1, additional_forward_args=args)
    replaced = ids.clone()
    replaced[:, 4] = 4
    torch.testing.assert_close(tokens[:, 4], clean - logit(replaced), atol=1e-12, rtol=0)
    assert (tokens[mask == 0] == 0).all()


@pytest.mark.parametrize("arch", ["distilbert", "roberta", "electra", "deberta", "gpt2"])
def test_word_embeddings_equal_token_replacement_except_with_the_pad_id_where_it_is_read(arch):
    """docs/text.md: a token id as the baseline at `input_layer=` the word embeddings gives the numbers of token
    replacement, except with the pad id on RoBERTa (positions count non-pad tokens) and GPT-2 (the last non-pad token
    is read)."""
    model, _, _, embeddings = _text(arch)
    ids, mask = _batch(arch, False)
    args = {"attention_mask": mask}
    for baseline in (4, PAD.get(arch, 0)):
        by_token = input_effects(model, ids, baseline=baseline, target=1, additional_forward_args=args)
        by_layer = input_effects(model, ids, baseline=baseline, target=1, additional_forward_args=args, input_layer=embeddings)
        reads_pad = baseline == PAD.get(arch, 0) and arch in ("roberta", "gpt2")
        assert torch.allclose(by_token, by_layer, atol=1e-12, rtol=0) != reads_pad


@pytest.mark.parametrize("arch", ["resnet", "convnext"])
def test_a_vision_stage_channel_and_a_patch_equal_brute_force(arch):
    torch.manual_seed(0)
    if arch == "resnet":
        model = T.ResNetForImageClassification(T.ResNetConfig(
            num_channels=3, embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic", num_labels=3))
    else:
        model = T.ConvNextForImageClassification(T.ConvNextConfig(
            num_channels=3, hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, num_labels=3, patch_size=4))
    model = model.double().eval()
    stage = f"{arch}.encoder.stages.1"
    x = torch.randn(3, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(2))

    def logit(v):
        with torch.no_grad():
            return model(pixel_values=v).logits[:, 1]

    channels = unit_effects(model, x, stage, target=1)  # channels of [N, C, H, W]
    c = int(channels.abs().sum(0).argmax())
    assert channels[:, c].abs().max() > 1e-4
    clean = logit(x)
    handle = model.get_submodule(stage).register_forward_hook(lambda m, i, o: o.index_fill(1, torch.tensor([c]), 0.0))
    torch.testing.assert_close(channels[:, c], clean - logit(x), atol=1e-12, rtol=0)
    handle.remove()
    patches = torch.arange(16).reshape(4, 4).repeat_interleave(8, 0).repeat_interleave(8, 1).expand(1, 3, 32, 32)
    effects = input_effects(model, x, patches, 0.0, target=1)
    z = x.clone()
    z[:, :, 8:16, :8] = 0  # patch 4: second row of patches, first column
    torch.testing.assert_close(effects[:, 4], logit(x) - logit(z), atol=1e-12, rtol=0)



def test_the_default_baseline_on_token_ids_is_refused_naming_the_default_and_a_token_to_give():
    """InputEffectAudit() and input_effects(model, ids) on token ids, as a new user first writes them, were refused with
    "... but got 0.0": a value the user never gave. The message says it is the default for float inputs and which
    token id to give instead."""
    model, *_ = _text("distilbert")
    ids, mask = _batch("distilbert", False)
    with pytest.raises(ValueError, match=r"but got 0\.0, the default for float inputs: .*tokenizer\.mask_token_id"):
        input_effects(model, ids, additional_forward_args={"attention_mask": mask})
    with pytest.raises(ValueError, match=r"but got 0\.5: "):
        input_effects(model, ids, baseline=0.5, additional_forward_args={"attention_mask": mask})
