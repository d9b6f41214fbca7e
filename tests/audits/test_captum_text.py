"""CaptumBaseline on token ids: Captum's layer methods on the word embeddings, reduced to the same
token groups as the causal effects, with the attention mask passed through; token stability."""

from __future__ import annotations

import pytest
import torch
from captum.attr import LayerGradientXActivation, LayerIntegratedGradients
from scipy import stats

from lightning_causal.audits.base import Probe
from lightning_causal.audits.captum_baseline import CaptumBaseline, CompareSettings
from lightning_causal.baselines import input_layer_attribute
from lightning_causal.baselines.metrics import perturbation_curve, token_stability
from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.groups import broadcast_groups
from tests.helpers.models import all_hook_counts
from tests.helpers.text import CLS, MASK, PAD, SEP, VOCAB, tiny_bert_classifier, token_batch

WORDS = "bert.embeddings.word_embeddings"
LAYER_METHODS = ("LayerIntegratedGradients", "LayerGradientXActivation", "LayerFeatureAblation")


@pytest.fixture(scope="module")
def bert():
    return tiny_bert_classifier(seed=3, classes=3)


def _probe():
    ids, att = token_batch(5, 8, seed=2)
    return Probe(ids, additional_forward_args={"attention_mask": att})


def test_layer_methods_on_the_embeddings_beside_the_causal_effects(bert):
    probe = _probe()
    words = torch.tensor([[0, 1, 1, 2, 3, 3, 4, 5]])
    audit = CaptumBaseline(LAYER_METHODS, words, baseline=MASK, input_layer=WORDS, top_k=3,
                           settings=CompareSettings(special_tokens=(PAD, CLS, SEP)))
    r = audit.run(bert, probe)
    att = probe.additional_forward_args["attention_mask"]
    with torch.no_grad():
        target = bert(probe.inputs, attention_mask=att).logits.argmax(1)
    causal = input_effects(bert, probe.inputs, words, MASK, target=target, additional_forward_args={"attention_mask": att},
                           special_tokens=(PAD, CLS, SEP))  # the special tokens keep their tokens in every replacement
    torch.testing.assert_close(r.maps["causal"], broadcast_groups(causal, words, probe.inputs.shape))
    # ablating the embeddings of a word = the causal effect of that word: exact agreement
    torch.testing.assert_close(r.maps["LayerFeatureAblation"], r.maps["causal"], atol=1e-10, rtol=0)
    assert r.scalars["compare/LayerFeatureAblation/spearman"] == pytest.approx(1.0)
    # Captum's LayerIntegratedGradients by hand, summed over the embedding and over each word
    lig = LayerIntegratedGradients(lambda ids, a: bert(ids, attention_mask=a).logits, bert.bert.embeddings.word_embeddings)
    kept = torch.isin(probe.inputs, torch.tensor([PAD, CLS, SEP]))
    attr = lig.attribute(probe.inputs, baselines=torch.where(kept, probe.inputs, MASK), target=target,
                         additional_forward_args=(att,), n_steps=16, method="gausslegendre").sum(-1)
    per_word = torch.zeros(5, 6, dtype=attr.dtype).index_add_(1, words[0], attr)
    torch.testing.assert_close(r.maps["LayerIntegratedGradients"], broadcast_groups(per_word, words, probe.inputs.shape),
                               atol=1e-8, rtol=1e-6)
    for label in LAYER_METHODS:
        for metric in ("spearman", "kendall", "topk", "deletion_auc", "insertion_auc", "stability"):
            assert f"compare/{label}/{metric}" in r.scalars
    assert r.non_finite() == [] and r.meta["sigma"] == 0.1 and all_hook_counts(bert) == 0
    assert torch.equal(r.maps["causal"][att == 0], torch.zeros(int((att == 0).sum()), dtype=r.maps["causal"].dtype))


def test_deletion_on_token_groups_replaces_by_the_baseline_token(bert):
    probe = _probe()
    ids, att = probe.inputs, probe.additional_forward_args["attention_mask"]
    scores = torch.arange(8, dtype=torch.float64).flip(0).expand(5, 8)  # position 0 first, then 1, ...
    frac, curves = perturbation_curve(bert, ids, torch.arange(8).unsqueeze(0), scores, baseline=MASK, steps=4,
                                      additional_forward_args={"attention_mask": att})
    with torch.no_grad():
        p = bert(ids, attention_mask=att).logits.softmax(1)
        t = p.argmax(1)
        half = ids.clone()
        half[:, :4] = MASK
        p_half = bert(half, attention_mask=att).logits.softmax(1)
        p_all = bert(torch.full_like(ids, MASK), attention_mask=att).logits.softmax(1)
    assert frac.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    for col, probs in ((0, p), (2, p_half), (4, p_all)):
        torch.testing.assert_close(curves[:, col], probs.gather(1, t.view(-1, 1)).squeeze(1), atol=1e-10, rtol=0)


def test_token_stability_replaces_only_eligible_tokens_by_probe_tokens():
    ids = torch.tensor([[1, 5, 6, 7, 8, 2, 0], [1, 9, 10, 11, 12, 2, 0]])
    eligible = (ids > 2)
    seen = []

    def explain(z):
        seen.append(z.clone())
        return z.float()

    token_stability(explain, ids, eligible, share=0.5, n_repeats=3, seed=0)
    perturbed = torch.stack(seen[1:])
    assert torch.equal(perturbed[:, ~eligible], ids[~eligible].expand(3, -1))  # special tokens and padding kept
    assert (perturbed != ids).any() and torch.isin(perturbed[:, eligible], ids[eligible]).all()  # drawn from the probe
    assert torch.equal(token_stability(lambda z: z.float(), ids, eligible, share=0.0), torch.ones(2))
    again = []
    token_stability(lambda z: again.append(z.clone()) or z.float(), ids, eligible, share=0.5, n_repeats=3, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(seen, again))  # a private seed: reproducible


def test_token_configuration_errors_name_the_fix(bert):
    with pytest.raises(ValueError, match="`input_layer`"):
        CaptumBaseline(("LayerIntegratedGradients",), baseline=MASK)
    with pytest.raises(ValueError, match="gradient methods \\['Saliency'\\].*LayerIntegratedGradients"):
        CaptumBaseline(("Saliency",), baseline=MASK).validate(bert, _probe())
    with pytest.raises(ValueError, match="`baseline` to be a token id"):
        CaptumBaseline(("LayerGradientXActivation",), input_layer=WORDS).validate(bert, _probe())
    with pytest.raises(ValueError, match="Unknown module name"):
        CaptumBaseline(("LayerGradientXActivation",), baseline=MASK, input_layer="bert.words").validate(bert, _probe())
    with pytest.raises(ValueError, match="without NoiseTunnel"):
        CaptumBaseline(("NoiseTunnel(LayerIntegratedGradients)",), baseline=MASK, input_layer=WORDS)
    with pytest.raises(ValueError, match="`special_tokens`"):
        CompareSettings(special_tokens=(-1,))
    # FeatureAblation works on the token ids themselves (no gradient)
    r = CaptumBaseline(("FeatureAblation",), baseline=MASK).run(bert, _probe())
    torch.testing.assert_close(r.maps["FeatureAblation"], r.maps["causal"], atol=1e-10, rtol=0)


def test_token_stability_does_not_depend_on_the_padded_length():
    """The same sentences padded right to 7 or 12 tokens, or padded left, get the same swaps: the
    draws are made per eligible token, not over the padded grid (they differed before)."""
    words = [[5, 6, 7, 8, 9], [10, 11, 12]]

    def padded(length, left=False):
        rows = [[1, *w, 2] for w in words]
        pads = [[0] * (length - len(r)) for r in rows]
        return torch.tensor([p + r if left else r + p for r, p in zip(rows, pads)])

    def swapped_words(ids):
        seen = []
        token_stability(lambda z: seen.append(z.clone()) or z.float(), ids, ids > 2, share=0.5, n_repeats=4, seed=3)
        return [[z[n][ids[n] > 2].tolist() for n in range(len(words))] for z in seen[1:]]

    short = swapped_words(padded(7))
    assert short != [words] * 4  # something was swapped
    assert swapped_words(padded(12)) == short
    assert swapped_words(padded(12, left=True)) == short


def test_per_sample_word_groups_from_a_function_of_the_ids(bert):
    """Word pieces grouped into words differ per sentence: ``feature_mask`` is a function of the
    probe's ids, as in InputEffectAudit. Each sentence's explanations are reduced to its own words
    (checked against Captum called directly and token replacement by hand), and its metrics cover
    only its real words (against SciPy); a per-sample tensor is refused with that advice."""
    ids, att = token_batch(5, 8, seed=2)
    ids[ids >= 40] = 40  # some continuation pieces ("##..."): they join the previous word

    def words(x):
        return (x != 40).long().cumsum(1) - 1

    w = words(ids)
    assert (w != torch.arange(8)).any() and (w[:, -1] != w[0, -1]).any()  # several pieces per word, per-sample groups
    probe = Probe(ids, additional_forward_args={"attention_mask": att})
    audit = CaptumBaseline(("LayerIntegratedGradients", "LayerGradientXActivation"), words, baseline=MASK, input_layer=WORDS,
                           settings=CompareSettings(special_tokens=(PAD, CLS, SEP)))
    r = audit.run(bert, probe)
    n, g = 5, int(w.max()) + 1
    special = torch.isin(ids, torch.tensor([PAD, CLS, SEP]))  # kept in every replacement, left out of the metrics
    real = torch.zeros(n, g, dtype=torch.bool)
    for i in range(n):
        real[i, w[i][(att[i] == 1) & ~special[i]]] = True  # sentence i has a real word w[i, t]
    assert not real.all()
    with torch.no_grad():
        logits = bert(ids, attention_mask=att).logits
    target = logits.argmax(1)
    causal = torch.zeros(n, g, dtype=logits.dtype)  # each word's real tokens replaced by [MASK]
    for i in range(n):
        for k in range(g):
            x = ids[i:i + 1].clone()
            x[0, (w[i] == k) & (att[i] == 1) & ~special[i]] = MASK
            with torch.no_grad():
                causal[i, k] = logits[i, target[i]] - bert(x, attention_mask=att[i:i + 1]).logits[0, target[i]]
    fwd, emb = (lambda x, a: bert(x, attention_mask=a).logits), bert.bert.embeddings.word_embeddings
    lig = LayerIntegratedGradients(fwd, emb).attribute(ids, baselines=torch.where(special, ids, MASK), target=target,
                                                       additional_forward_args=(att,), n_steps=16, method="gausslegendre")
    gxa = LayerGradientXActivation(fwd, emb).attribute(ids, target=target, additional_forward_args=(att,))
    refs = {"causal": causal}
    for label, a in (("LayerIntegratedGradients", lig), ("LayerGradientXActivation", gxa)):
        refs[label] = torch.zeros(n, g, dtype=a.dtype).scatter_add_(1, w, a.detach().sum(-1))  # each sentence's own words
    for label, ref in refs.items():
        torch.testing.assert_close(r.maps[label], ref.gather(1, w), atol=1e-8, rtol=1e-6)
        torch.testing.assert_close(r.vectors[f"mean_abs/{label}"], (ref.abs() * real).sum(0) / real.sum(0).clamp_min(1),
                                   atol=1e-8, rtol=1e-6)
    for label in ("LayerIntegratedGradients", "LayerGradientXActivation"):
        rho = [stats.spearmanr(causal[i][real[i]].abs(), refs[label][i][real[i]].abs()).statistic for i in range(n)]
        assert r.scalars[f"compare/{label}/spearman"] == pytest.approx(sum(rho) / n, abs=1e-9)
    assert r.meta["groups"] == g and r.non_finite() == [] and all_hook_counts(bert) == 0
    with pytest.raises(ValueError, match="pass a function of the probe's inputs"):
        CaptumBaseline(("LayerGradientXActivation",), w, baseline=MASK, input_layer=WORDS).run(bert, probe)
    with pytest.raises(TypeError, match="integer tensor of group ids"):
        CaptumBaseline(("LayerGradientXActivation",), lambda x: x.float(), baseline=MASK, input_layer=WORDS).run(bert, probe)


@pytest.mark.parametrize("method", ["LayerIntegratedGradients", "LayerFeatureAblation"])
def test_input_layer_attribute_refuses_a_token_baseline_outside_the_vocabulary(bert, method):
    ids, att = token_batch(2, 6)
    with pytest.raises(ValueError, match=rf"`baseline` to be a token id in \[0, {VOCAB}\) .*'{WORDS}'.* got {VOCAB}$"):
        input_layer_attribute(bert, ids, WORDS, method, baseline=VOCAB, target=0, additional_forward_args={"attention_mask": att})
    assert all_hook_counts(bert) == 0
    got = input_layer_attribute(bert, ids, WORDS, method, baseline=MASK, target=0, additional_forward_args={"attention_mask": att})
    assert got.shape == ids.shape
