"""``special_tokens=``: token ids that no intervention replaces, so that encoder-decoder classifiers
(BART, T5), which refuse ids without their ``</s>``, can be audited by token replacement; and
``attribute(...)``'s perturbation methods keep padded tokens. Checked against hand replacement in float64."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import InputEffectAudit, LayerMapAudit
from lightning_causal.audits import CaptumBaseline, CompareSettings
from lightning_causal.audits.base import Probe
from lightning_causal.baselines.captum_methods import attribute
from lightning_causal.causal import input_effects

transformers = pytest.importorskip("transformers")

VOCAB, MASK = 30, 3


def _bart() -> tuple[nn.Module, dict]:
    torch.manual_seed(0)
    config = transformers.BartConfig(
        vocab_size=VOCAB, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=32, decoder_ffn_dim=32, num_labels=3, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        max_position_embeddings=16, init_std=0.3)
    return transformers.BartForSequenceClassification(config).double().eval(), {"pad": 1, "eos": 2, "special": (0, 2)}


def _t5() -> tuple[nn.Module, dict]:
    torch.manual_seed(0)
    config = transformers.T5Config(vocab_size=VOCAB, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_decoder_layers=1, num_heads=2,
                                   num_labels=3, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, dropout_rate=0.0)
    return transformers.T5ForSequenceClassification(config).double().eval(), {"pad": 0, "eos": 1, "special": (1,)}


def _sentences(sp: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Three right-padded sentences of 7, 5 and 4 tokens, each ending in ``</s>`` (BART's start with ``<s>``)."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(4, VOCAB, (3, 7), generator=g)
    mask = (torch.arange(7) < torch.tensor([[7], [5], [4]])).long()
    ids[mask == 0] = sp["pad"]
    ids[torch.arange(3), mask.sum(1) - 1] = sp["eos"]
    if 0 in sp["special"]:
        ids[:, 0] = 0
    return ids, mask


def _by_hand(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor, special: tuple, groups: torch.Tensor) -> torch.Tensor:
    """``f_0(x) - f_0(x with group g's real, non-special tokens set to MASK)`` for each group, one pass each."""
    keep = (mask == 0) | torch.isin(ids, torch.tensor(special))
    with torch.no_grad():
        clean = model(input_ids=ids, attention_mask=mask).logits[:, 0]
        out = torch.zeros(ids.shape[0], int(groups.max()) + 1, dtype=torch.float64)
        for g in range(out.shape[1]):
            z = torch.where((groups == g) & ~keep, MASK, ids)
            out[:, g] = clean - model(input_ids=z, attention_mask=mask).logits[:, 0]
    return out


@pytest.mark.parametrize("build", [_bart, _t5])
def test_input_effects_keeps_special_tokens_and_equals_hand_replacement(build):
    """Replacing every position by one baseline id removed ``</s>``, and BART/T5 refused the ids
    ("All examples must have the same number of <eos> tokens"): no token-replacing estimator could run."""
    model, sp = build()
    ids, mask = _sentences(sp)
    args = {"attention_mask": mask}
    effects = input_effects(model, ids, baseline=MASK, target=0, additional_forward_args=args, special_tokens=sp["special"])
    expected = _by_hand(model, ids, mask, sp["special"], torch.arange(7).expand(3, 7))
    torch.testing.assert_close(effects, expected, rtol=1e-9, atol=1e-12)
    assert bool((effects[mask == 0] == 0).all()) and bool((effects[torch.isin(ids, torch.tensor(sp["special"]))] == 0).all())
    # a group that holds </s> replaces its other tokens only (pairs of positions)
    pairs = (torch.arange(7) // 2).expand(3, 7)
    grouped = input_effects(model, ids, pairs, MASK, target=0, additional_forward_args=args, special_tokens=sp["special"])
    torch.testing.assert_close(grouped, _by_hand(model, ids, mask, sp["special"], pairs), rtol=1e-9, atol=1e-12)


def test_special_tokens_change_nothing_where_no_input_holds_them_and_refuse_bad_values():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(10, 3), nn.Flatten(), nn.Linear(12, 2)).double()
    ids = torch.randint(3, 10, (5, 4))
    plain = input_effects(model, ids, baseline=0)
    assert torch.equal(input_effects(model, ids, baseline=0, special_tokens=(1, 2)), plain)
    assert torch.equal(input_effects(model, ids, baseline=0, special_tokens=()), plain)
    kept = input_effects(model, ids, baseline=0, special_tokens=(int(ids[0, 1]),))
    assert bool((kept[ids == ids[0, 1]] == 0).all())
    assert torch.equal(kept[ids != ids[0, 1]], plain[ids != ids[0, 1]])
    # a second integer input (token types) holds no tokens: its values are replaced as before
    types = torch.randint(0, 2, (5, 4))

    class Typed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb, self.types, self.out = nn.Embedding(10, 3), nn.Embedding(2, 3), nn.Linear(12, 2)

        def forward(self, ids, token_type_ids):
            return self.out((self.emb(ids) + self.types(token_type_ids)).flatten(1))

    typed = Typed().double()
    both = input_effects(typed, (ids, types), baseline=(0, 0), special_tokens=(1,))
    torch.testing.assert_close(both[:, 4:], input_effects(typed, (ids, types), baseline=(0, 0))[:, 4:], rtol=0, atol=0)
    with pytest.raises(ValueError, match="special_tokens.*'eos'"):
        input_effects(model, ids, baseline=0, special_tokens="eos")
    with pytest.raises(ValueError, match="special_tokens.*token"):
        input_effects(nn.Linear(4, 1), torch.randn(2, 4), special_tokens=(1,))


@pytest.mark.parametrize("build", [_bart, _t5])
def test_input_layer_keeps_special_tokens(build):
    model, sp = build()
    ids, mask = _sentences(sp)
    layer = "model.encoder.embed_tokens" if build is _bart else "transformer.encoder.embed_tokens"
    if layer not in dict(model.named_modules()):  # transformers 4's T5: the encoder's embedding is `shared`
        pytest.skip(f"transformers {transformers.__version__} lists {layer} only as the shared embedding, which the "
                    "decoder runs too: the encoder's embedding cannot be named alone")
    kw = dict(baseline=MASK, target=0, additional_forward_args={"attention_mask": mask}, input_layer=layer)
    kept, plain = input_effects(model, ids, special_tokens=sp["special"], **kw), input_effects(model, ids, **kw)
    special = torch.isin(ids, torch.tensor(sp["special"]))
    assert bool((kept[special] == 0).all()) and bool((plain[special] != 0).any())
    torch.testing.assert_close(kept[~special], plain[~special], rtol=1e-9, atol=1e-12)


def test_input_effect_audit_on_t5_keeps_eos_and_leaves_it_out_of_the_summaries():
    model, sp = _t5()
    ids, mask = _sentences(sp)
    result = InputEffectAudit(baseline=MASK, target=0, special_tokens=sp["special"]).run(
        model, Probe(ids, additional_forward_args={"attention_mask": mask}))
    expected = _by_hand(model, ids, mask, sp["special"], torch.arange(7).expand(3, 7))
    real = (mask == 1) & (ids != sp["eos"])
    assert result.scalars["mean_abs_effect"] == pytest.approx(float(expected.abs()[real].mean()), rel=1e-9)
    assert sp["eos"] not in [row["token"] for row in result.tables["top_tokens"]]
    with pytest.raises(ValueError, match="special_tokens"):
        InputEffectAudit(special_tokens=(-1,))


def test_layer_map_audit_runs_on_bart_with_its_special_tokens_kept():
    model, sp = _bart()
    ids, mask = _sentences(sp)
    probe = Probe(ids, additional_forward_args={"attention_mask": mask})
    result = LayerMapAudit(layers=["model.encoder.layers.0", "model.decoder.layers.0"], baseline=MASK,
                           special_tokens=sp["special"]).run(model, probe)
    out = next(n for n in result.graphs["layer_map"]["nodes"] if n["id"] == "<output>")["group_effects"]
    assert out[0] == 0 and out[1] > 0  # position 0 holds <s> in every sentence: no row, effect 0


def test_captum_baseline_on_bart_keeps_special_tokens_in_every_replacement():
    """Its causal effects, FeatureAblation's baselines, LayerIntegratedGradients' reference embeddings and the
    deletion/insertion curves all set every position to the baseline id, which BART refuses."""
    model, sp = _bart()
    ids, mask = _sentences(sp)
    probe = Probe(ids, additional_forward_args={"attention_mask": mask})
    audit = CaptumBaseline(methods=("FeatureAblation", "LayerIntegratedGradients"), input_layer="model.encoder.embed_tokens",
                           baseline=MASK, target=0, settings=CompareSettings(special_tokens=sp["special"], steps=3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = audit.run(model, probe)
    kept = (mask == 0) | torch.isin(ids, torch.tensor(sp["special"]))
    for label in ("causal", "FeatureAblation", "LayerIntegratedGradients"):
        assert bool((result.maps[label][kept] == 0).all()), label
    expected = _by_hand(model, ids, mask, sp["special"], torch.arange(7).expand(3, 7))
    torch.testing.assert_close(attribute(model, ids, "FeatureAblation", 0, baselines=torch.where(kept, ids, MASK),
                                         additional_forward_args={"attention_mask": mask}), expected, rtol=1e-9, atol=1e-12)
    assert all(v == v for k, v in result.scalars.items() if k.endswith("_auc"))


def test_attribute_feature_ablation_on_right_padded_llama_is_zero_at_padding():
    """Replacing a pad id moves the token a Llama classifier reads (the last one before the first pad):
    ``attribute(model, ids, "FeatureAblation")`` gave padded positions the largest values."""
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=VOCAB, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=16, pad_token_id=0,
                                      num_labels=2, attn_implementation="sdpa")
    model = transformers.LlamaForSequenceClassification(config).double().eval()
    ids = torch.tensor([[5, 6, 7, 8, 9], [5, 11, 12, 0, 0]])
    args = {"attention_mask": (ids != 0).long()}
    got = attribute(model, ids, "FeatureAblation", target=0, baselines=MASK, additional_forward_args=args)
    assert bool((got[1, 3:] == 0).all())
    torch.testing.assert_close(got, input_effects(model, ids, baseline=MASK, target=0, additional_forward_args=args),
                               rtol=1e-9, atol=1e-12)
    # without an attention mask nothing is kept: the pad ids are tokens like any other
    plain = attribute(model, ids, "FeatureAblation", target=0, baselines=MASK)
    assert bool((plain[1, 3:] != 0).any())


@pytest.mark.parametrize("build", [_bart, _t5])
def test_without_special_tokens_the_refusal_of_the_model_names_the_option(build):
    """The model's own message ("All examples must have the same number of <eos> tokens") said nothing about the
    library's way out."""
    model, sp = build()
    ids, mask = _sentences(sp)
    probe = Probe(ids, additional_forward_args={"attention_mask": mask})
    with pytest.raises(ValueError, match=r"(?s)eos.*special_tokens=\(eos_id,\)"):
        input_effects(model, ids, baseline=MASK, additional_forward_args={"attention_mask": mask})
    with pytest.raises(ValueError, match=r"(?s)eos.*special_tokens=\(eos_id,\)"):
        LayerMapAudit(baseline=MASK).run(model, probe)


def test_attribute_keeps_padding_with_the_baselines_given_as_an_option():
    """The padded positions keep their tokens whichever way the baseline is given; the explicit option is the
    baseline (positions holding the argument's default 0 are not taken as kept)."""
    class Masked(nn.Module):  # reads the padded position (its pad id), as a Llama classifier does
        def __init__(self) -> None:
            super().__init__()
            self.emb, self.out = nn.Embedding(10, 3), nn.Linear(12, 2)

        def forward(self, ids, attention_mask):
            return self.out(self.emb(ids).flatten(1))

    torch.manual_seed(0)
    model = Masked().double()
    ids = torch.tensor([[0, 4, 5, 0], [3, 0, 2, 1]])
    args = {"attention_mask": torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])}
    expected = input_effects(model, ids, baseline=3, target=0, additional_forward_args=args)
    for kw in ({"baselines": 3}, {"options": {"baselines": 3}}):
        got = attribute(model, ids, "FeatureAblation", 0, additional_forward_args=args, **kw)
        torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-12)
    assert expected[0, 0] != 0 and expected[1, 3] == 0
