"""The text audits and CLP on Hugging Face classifiers other than BERT (DistilBERT, RoBERTa, whose
positions count non-pad tokens, GPT-2 padded on the left, which reads its last non-pad token),
each checked against a brute-force reference; counterfactuals and padded positions."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from captum.attr import LayerIntegratedGradients
from torch import nn
from torch.utils.data import DataLoader

from lightning_causal.audits import CaptumBaseline, FairnessAudit, InputEffectAudit, Probe
from lightning_causal.callbacks.audit import CausalAuditCallback
from lightning_causal.causal import TokenSwap, counterfactual_fairness_gap, input_effects
from lightning_causal.causal.scm.fairness import carrier_unit_effects
from lightning_causal.repair import CausalRepairModule, CounterfactualFairnessTerm
from tests.helpers.models import all_hook_counts
from tests.helpers.text import hf_classifier_module

transformers = pytest.importorskip("transformers")

PAD, CLS, SEP, MASK = 0, 1, 2, 3
HE, SHE, HIS, HER, MAN, WO, XMAN = 4, 5, 6, 7, 8, 9, 10  # "woman" is two pieces: WO XMAN ("wo", "##man")
VOCAB = 40
PAIRS = [(HE, SHE), (HIS, HER)]
EMBEDDINGS = {"distilbert": "distilbert.embeddings.word_embeddings", "roberta": "roberta.embeddings.word_embeddings",
              "gpt2": "transformer.wte"}


def _model(arch: str, seed: int = 0) -> nn.Module:
    """A tiny classifier (hidden 16, 2 layers, 2 heads), weights 0.3 · N(0, 1) from a private generator, float64, eval."""
    common = {"vocab_size": VOCAB, "pad_token_id": PAD, "num_labels": 2}
    if arch == "distilbert":
        config = transformers.DistilBertConfig(dim=16, n_layers=2, n_heads=2, hidden_dim=32, max_position_embeddings=16, **common)
        model = transformers.DistilBertForSequenceClassification(config)
    elif arch == "roberta":
        config = transformers.RobertaConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                                            max_position_embeddings=20, type_vocab_size=1, **common)
        model = transformers.RobertaForSequenceClassification(config)
    else:
        config = transformers.GPT2Config(n_embd=16, n_layer=2, n_head=2, n_positions=16, **common)
        model = transformers.GPT2ForSequenceClassification(config)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return model.double().eval()


def _sentences(n: int = 6, length: int = 10, *, left: bool = False, seed: int = 0, specials: bool = True):
    """``(ids, attention_mask)``: sentences of 3..7 words over ids 11.., one identity term each
    (he/his/man or she/her/woman, the last two pieces) or none, padded to ``length``."""
    g = torch.Generator().manual_seed(seed)
    terms = [[HE], [HIS], [MAN], [SHE], [HER], [WO, XMAN], []]
    ids = torch.full((n, length), PAD)
    mask = torch.zeros(n, length, dtype=torch.long)
    for i in range(n):
        words = torch.randint(11, VOCAB, (int(torch.randint(3, 8, (1,), generator=g)),), generator=g).tolist()
        at = int(torch.randint(0, len(words), (1,), generator=g))
        row = words[:at] + terms[i % len(terms)] + words[at:]
        row = ([CLS] + row + [SEP] if specials else row)[:length]
        span = slice(length - len(row), length) if left else slice(0, len(row))
        ids[i, span], mask[i, span] = torch.tensor(row), 1
    return ids, mask


def _words(ids: torch.Tensor) -> torch.Tensor:
    """Word groups: a new word at every token that is not the continuation piece ``##man``."""
    return (ids != XMAN).long().cumsum(1) - 1


def _logits(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask).logits


def _swapped(ids: torch.Tensor) -> torch.Tensor:
    out = ids.clone()
    for a, b in PAIRS:
        out[ids == a], out[ids == b] = b, a
    return out


CASES = [("distilbert", False), ("roberta", False), ("gpt2", True)]


@pytest.mark.parametrize(("arch", "left"), CASES)
def test_token_gap_clp_and_effects_equal_brute_force(arch, left):
    model = _model(arch)
    ids, mask = _sentences(left=left, specials=arch != "gpt2")
    args = {"attention_mask": mask}
    # the counterfactual token gap: swap by hand, compare probabilities over the sentences that change
    z, z_cf = _logits(model, ids, mask), _logits(model, _swapped(ids), mask)
    changed = (_swapped(ids) != ids).any(1)
    delta = z_cf.softmax(1)[:, 1] - z.softmax(1)[:, 1]
    gap = counterfactual_fairness_gap(model, ids, TokenSwap(PAIRS), target=1, additional_forward_args=args)
    assert gap["mean_abs"] == pytest.approx(float(delta[changed].abs().mean()), rel=1e-9)
    assert gap["changed"] == pytest.approx(float(changed.double().mean()))
    # CLP (Garg et al.): mean over the batch of |g(x) - g(x_cf)|, g = z_1 - z_0; unchanged rows add 0
    with torch.no_grad():
        clp = CounterfactualFairnessTerm(TokenSwap(PAIRS)).loss(model, ids, None, additional_forward_args=args)
    g, g_cf = z[:, 1] - z[:, 0], z_cf[:, 1] - z_cf[:, 0]
    assert float(clp) == pytest.approx(float(((g - g_cf).abs() * changed).mean()), rel=1e-9)
    # word effects (woman = two pieces) by brute-force replacement with [MASK]; padding exactly 0
    target = z.argmax(1)
    words = _words(ids)
    effects = input_effects(model, ids, words, MASK, target=target, additional_forward_args=args)
    for i in range(ids.shape[0]):
        for w in range(effects.shape[1]):
            real = (words[i] == w) & (mask[i] == 1)
            if not real.any():
                assert effects[i, w] == 0
                continue
            x = ids[i : i + 1].clone()
            x[0, real] = MASK
            ref = z[i, target[i]] - _logits(model, x, mask[i : i + 1])[0, target[i]]
            assert float(effects[i, w]) == pytest.approx(float(ref), abs=1e-10)
    # on the embeddings with the [MASK] id: the same numbers as token replacement
    layered = input_effects(model, ids, words, MASK, target=target, additional_forward_args=args, input_layer=EMBEDDINGS[arch])
    torch.testing.assert_close(layered, effects, atol=1e-10, rtol=0)


@pytest.mark.parametrize(("arch", "left"), CASES)
def test_captum_baseline_equals_layer_integrated_gradients_called_directly(arch, left):
    model = _model(arch, seed=1)
    ids, mask = _sentences(left=left, specials=arch != "gpt2", seed=1)
    audit = CaptumBaseline((("LayerIntegratedGradients", {"n_steps": 8}),), _words, baseline=MASK, input_layer=EMBEDDINGS[arch])
    result = audit.run(model, Probe(ids, additional_forward_args={"attention_mask": mask}))
    target = _logits(model, ids, mask).argmax(1)
    layer = dict(model.named_modules())[EMBEDDINGS[arch]]
    lig = LayerIntegratedGradients(lambda x, a: model(input_ids=x, attention_mask=a).logits, layer)
    attr = lig.attribute(ids, baselines=torch.full_like(ids, MASK), target=target, additional_forward_args=(mask,),
                         n_steps=8, method="gausslegendre").sum(-1) * mask
    words = _words(ids)
    per_word = torch.zeros(ids.shape[0], int(words.max()) + 1, dtype=attr.dtype).scatter_add_(1, words, attr)
    torch.testing.assert_close(result.maps["LayerIntegratedGradients"], per_word.gather(1, words) * mask, atol=1e-10, rtol=1e-8)


def test_identity_terms_at_padded_positions_are_not_swapped():
    """A buffer whose padded positions hold stale ids (attention mask 0): they are no part of the
    sentence. Before the fix they were swapped, so every such sentence counted as changed with Δ = 0
    and the gap was diluted (0.49 -> 0.23 on a trained DistilBERT), and the group of each sentence
    was read from its padding."""
    model = _model("distilbert", seed=2)
    ids, mask = _sentences(n=7)
    stale = ids.masked_fill(mask == 0, HE)  # the model cannot read them: the same logits
    torch.testing.assert_close(_logits(model, stale, mask), _logits(model, ids, mask), atol=1e-12, rtol=0)
    args = {"attention_mask": mask}
    clean = counterfactual_fairness_gap(model, ids, TokenSwap(PAIRS), additional_forward_args=args)
    dirty = counterfactual_fairness_gap(model, stale, TokenSwap(PAIRS), additional_forward_args=args)
    assert dirty["changed"] == clean["changed"] == pytest.approx(4 / 7)  # he, his, she, her
    assert dirty["mean_abs"] == pytest.approx(clean["mean_abs"], rel=1e-12)
    audit = FairnessAudit(TokenSwap(PAIRS))
    r_clean, r_dirty = audit.run(model, Probe(ids, additional_forward_args=args)), audit.run(model, Probe(stale, additional_forward_args=args))
    assert r_dirty.tables["groups"] == r_clean.tables["groups"]
    assert [row["count"] for row in r_clean.tables["groups"]] == [2, 2]
    term = CounterfactualFairnessTerm(TokenSwap(PAIRS))
    with torch.no_grad():
        assert float(term.loss(model, stale, None, additional_forward_args=args)) == pytest.approx(
            float(term.loss(model, ids, None, additional_forward_args=args)), rel=1e-12)


def _man_to_woman(ids: torch.Tensor) -> torch.Tensor:
    """man -> wo ##man, shifting the rest of the sentence right (into its padding)."""
    out = torch.full_like(ids, PAD)
    for i, row in enumerate(ids.tolist()):
        new = [t for tok in row for t in ([WO, XMAN] if tok == MAN else [tok]) if t != PAD][: ids.shape[1]]
        out[i, : len(new)] = torch.tensor(new)
    return out


def test_a_counterfactual_that_writes_into_padding_is_refused():
    """x_cf runs with x's attention mask: before the fix a term of more word pieces silently lost
    the sentence's last token (masked out) and the gap was that of other sentences."""
    model = _model("distilbert")
    ids, mask = _sentences(n=7)
    assert (_man_to_woman(ids)[mask == 0] != PAD).any()  # the man sentence grows into its padding
    args = {"attention_mask": mask}
    with pytest.raises(ValueError, match=r"padded positions \(attention mask 0\).*rows \[2\]"):
        counterfactual_fairness_gap(model, ids, _man_to_woman, additional_forward_args=args)
    with pytest.raises(ValueError, match="padded positions"):
        FairnessAudit(_man_to_woman).run(model, Probe(ids, additional_forward_args=args))
    with pytest.raises(ValueError, match="padded positions"):
        CounterfactualFairnessTerm(_man_to_woman).loss(model, ids, None, additional_forward_args=args)
    # without padding to write into (no attention mask), the callable is taken as it is
    assert counterfactual_fairness_gap(model, ids, _man_to_woman)["changed"] > 0


@pytest.mark.parametrize(("arch", "left"), [("roberta", False), ("gpt2", True)])
def test_text_audits_and_clp_leave_a_fit_bit_identical(arch, left, tmp_path):
    ids, mask = _sentences(n=16, left=left, specials=arch != "gpt2", seed=3)
    data = [{"input_ids": ids[i], "attention_mask": mask[i], "labels": torch.tensor(i % 2)} for i in range(16)]

    def fit(audit: bool):
        pl.seed_everything(0)
        transformers_model = _model(arch).float().train()  # dropout on: the audits must not draw from the RNG
        module = CausalRepairModule.wrap(hf_classifier_module(transformers_model, lr=1e-2), [CounterfactualFairnessTerm(TokenSwap(PAIRS), weight=0.5)])
        audits = [InputEffectAudit(_words, baseline=MASK, top_k=3), FairnessAudit(TokenSwap(PAIRS)),
                  CaptumBaseline((("LayerIntegratedGradients", {"n_steps": 2}),), _words, baseline=MASK,
                                 input_layer="model." + EMBEDDINGS[arch])]
        trainer = pl.Trainer(default_root_dir=str(tmp_path), max_epochs=2, accelerator="cpu", logger=False,
                             callbacks=[CausalAuditCallback(audits, probe_size=6)] if audit else [], deterministic=True,
                             enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
        trainer.fit(module, DataLoader(data, batch_size=8, shuffle=True), DataLoader(data, batch_size=8))
        return module, trainer, torch.get_rng_state()

    a, _, rng_a = fit(False)
    b, trainer, rng_b = fit(True)
    assert trainer.callbacks[0].audited_epochs == [0, 1]
    assert "causal/fairness/cf_gap" in trainer.callback_metrics
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(pa, pb), name
    assert torch.equal(rng_a, rng_b) and all_hook_counts(b) == 0
    assert [m.training for m in a.modules()] == [m.training for m in b.modules()]


def test_token_strips_say_which_colour_is_which_sign():
    """A token strip has no colour bar: before, a user could not tell a token that raises the
    explained score (red) from one that lowers it (blue); the strip's title now says so."""
    from lightning_causal.reporting.figure_kinds import MapData, map_figures

    ids, mask = _sentences(n=1)
    effect = torch.linspace(-1, 1, ids.shape[1]).unsqueeze(0) * mask
    (_, fig), = map_figures(MapData(ids, {"causal": effect}, "tokens"), "tokens")
    assert "red +, blue −" in fig.axes[0].get_title(loc="left")


def test_a_swap_to_an_id_outside_the_vocabulary_is_named():
    """Before: IndexError 'index out of range in self' from deep inside nn.Embedding (a device-side
    assert on a GPU) in the gap, the audit and the CLP term, naming neither the swap nor the vocabulary."""
    model = _model("roberta")
    ids, mask = _sentences(n=7)
    args = {"attention_mask": mask}
    swap = TokenSwap([(HE, VOCAB + 3)])
    named = rf"TokenSwap\(pairs=\[\(4, {VOCAB + 3}\)\]\) to give token ids in \[0, {VOCAB}\).*word_embeddings"
    with pytest.raises(ValueError, match=named):
        counterfactual_fairness_gap(model, ids, swap, additional_forward_args=args)
    with pytest.raises(ValueError, match=named):
        FairnessAudit(swap).validate(model, Probe(ids, additional_forward_args=args))
    with pytest.raises(ValueError, match=named):
        carrier_unit_effects(model, ids, swap, "roberta.encoder.layer.0", unit_dim=-1, additional_forward_args=args)
    with pytest.raises(ValueError, match=named):  # before the pass too (it named the largest id after it failed)
        CounterfactualFairnessTerm(swap).loss(model, ids, None, additional_forward_args=args)


def test_the_groups_of_a_token_swap_are_named_by_their_terms():
    """Before, the summary read 'groups: 0 (positive_rate 1), 1 (positive_rate 0)': which
    sentences a group holds was in the docs only. Now each row names its terms' ids."""
    from lightning_causal.reporting.summary import markdown_summary

    model = _model("distilbert")
    ids, mask = _sentences(n=7)
    result = FairnessAudit(TokenSwap(PAIRS)).run(model, Probe(ids, additional_forward_args={"attention_mask": mask}))
    assert [row["name"] for row in result.tables["groups"]] == [f"first terms {[HE, HIS]}", f"second terms {[SHE, HER]}"]
    assert f"groups: first terms {[HE, HIS]} (positive_rate" in markdown_summary(0, [result])
