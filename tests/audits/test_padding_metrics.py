"""The audits' summaries of token inputs leave padding out: the same sentences padded to another
length give the same agreement, curves and effect scalars (padded positions have effect exactly 0
under every explanation, and counted as agreeing ties and as curve steps they inflated them)."""

from __future__ import annotations

import pytest
import torch
from scipy import stats

from lightning_causal.audits import InputEffectAudit
from lightning_causal.audits.base import Probe
from lightning_causal.audits.captum_baseline import CaptumBaseline, CompareSettings
from tests.helpers.text import CLS, MASK, PAD, SEP, tiny_bert_classifier, token_batch

WORDS = "bert.embeddings.word_embeddings"
LENGTHS = (8, 12, 16)


@pytest.fixture(scope="module")
def bert():
    return tiny_bert_classifier(seed=3, classes=3)


def _padded(length: int) -> Probe:
    """The same six sentences (up to 8 tokens, some already padded) padded to ``length``."""
    ids, att = token_batch(6, 8, seed=2)
    extra = length - ids.shape[1]
    ids = torch.cat([ids, torch.full((6, extra), PAD)], 1)
    att = torch.cat([att, torch.zeros(6, extra, dtype=att.dtype)], 1)
    return Probe(ids, additional_forward_args={"attention_mask": att})


def test_real_groups_of_positions_and_of_words_reaching_into_padding():
    from lightning_causal.audits.input_effects import real_groups

    att = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    ids = torch.zeros(2, 4, dtype=torch.long)
    assert real_groups(ids, torch.arange(4).unsqueeze(0), {"attention_mask": att}).tolist() == [
        [True, True, True, False], [True, True, False, False]]
    words = torch.tensor([[0, 1, 1, 2]])  # word 1 is half padding in row 1: it still has a real token
    assert real_groups(ids, words, {"attention_mask": att}).tolist() == [[True, True, False], [True, True, False]]
    assert real_groups(ids, words, {"attention_mask": torch.ones(2, 4)}) is None  # nothing padded
    assert real_groups(ids, words, None) is None


def test_captum_baseline_metrics_do_not_change_with_the_padding_length(bert):
    audit = CaptumBaseline(("LayerIntegratedGradients", "LayerGradientXActivation"), baseline=MASK, input_layer=WORDS,
                           top_k=3, settings=CompareSettings(special_tokens=(PAD, CLS, SEP)))
    runs = {t: audit.run(bert, _padded(t)) for t in LENGTHS}
    first = runs[LENGTHS[0]]
    keys = list(first.scalars)  # stability included: its replacements are drawn per real token
    assert any("spearman" in k for k in keys) and "deletion_auc" in keys and "insertion_auc" in keys
    assert any(k.endswith("stability") for k in keys)
    for t in LENGTHS[1:]:
        for key in keys:
            assert runs[t].scalars[key] == pytest.approx(first.scalars[key], abs=1e-9), (t, key)
        assert runs[t].curves["deletion"]["x"] == pytest.approx(first.curves["deletion"]["x"], abs=1e-12)
        torch.testing.assert_close(runs[t].vectors["mean_abs/causal"][:8], first.vectors["mean_abs/causal"], atol=1e-9, rtol=0)
    # the agreement is the mean over samples of SciPy's statistics on the real tokens
    att = _padded(16).additional_forward_args["attention_mask"].bool()
    att &= ~torch.isin(_padded(16).inputs, torch.tensor([PAD, CLS, SEP]))  # special tokens: kept, out of the metrics
    r = runs[16]
    rho, tau = [], []
    for n in range(6):
        a = r.maps["causal"][n][att[n]].abs().numpy()
        b = r.maps["LayerIntegratedGradients"][n][att[n]].abs().numpy()
        rho.append(stats.spearmanr(a, b).statistic)
        tau.append(stats.kendalltau(a, b).statistic)
    assert r.scalars["compare/LayerIntegratedGradients/spearman"] == pytest.approx(sum(rho) / 6, abs=1e-9)
    assert r.scalars["compare/LayerIntegratedGradients/kendall"] == pytest.approx(sum(tau) / 6, abs=1e-9)


def test_input_effect_scalars_and_top_groups_average_over_real_tokens(bert):
    runs = {t: InputEffectAudit(baseline=MASK, top_k=3).run(bert, _padded(t)) for t in LENGTHS}
    first = runs[LENGTHS[0]]
    att = _padded(8).additional_forward_args["attention_mask"].bool()
    effect = first.maps["effect"]
    assert first.scalars["mean_abs_effect"] == pytest.approx(float(effect[att].abs().mean()), abs=1e-12)
    per_position = (effect.abs() * att).sum(0) / att.sum(0)  # mean over the sentences where the position is real
    torch.testing.assert_close(first.vectors["mean_abs_effect"], per_position, atol=1e-12, rtol=0)
    for t in LENGTHS[1:]:
        assert runs[t].scalars == pytest.approx(first.scalars, abs=1e-9), t
        assert [row["group"] for row in runs[t].tables["top_groups"]] == [row["group"] for row in first.tables["top_groups"]]
        assert torch.equal(runs[t].vectors["mean_abs_effect"][8:], torch.zeros(t - 8, dtype=effect.dtype))


def test_input_effect_audit_takes_per_sample_word_groups_from_a_function_of_the_probe(bert):
    """Word pieces grouped into words differ per sentence: a mask function of the probe's ids gives
    them (a per-sample tensor fixed at construction could not match the callback's probe). Group g
    is each sentence's g-th word; its summaries count the sentences that have a real g-th word."""
    from lightning_causal.causal import input_effects

    probe = _padded(12)
    ids, att = probe.first, probe.additional_forward_args["attention_mask"]

    def words(x):  # ids >= 40 continue the previous word (a "##" piece); specials and padding start one
        return (x < 40).long().cumsum(1) - 1

    audit = InputEffectAudit(feature_mask=words, baseline=MASK, top_k=3, ace_values=None)
    result = audit.run(bert, probe)
    w = words(ids)
    assert (w != torch.arange(12)).any()  # some words have two pieces
    with torch.no_grad():
        pred = bert(ids, attention_mask=att).logits.argmax(1)
    want = input_effects(bert, ids, w, MASK, target=pred, additional_forward_args={"attention_mask": att})
    torch.testing.assert_close(result.maps["effect"], want.gather(1, w), atol=1e-12, rtol=0)
    real = torch.zeros_like(want, dtype=torch.bool)
    for n in range(6):
        for t in range(12):
            if att[n, t]:
                real[n, w[n, t]] = True  # sentence n has a real word w[n, t]
    assert not real.all()  # shorter sentences have fewer words
    by_hand = torch.stack([want[real[:, g], g].abs().mean() if real[:, g].any() else torch.zeros((), dtype=want.dtype)
                           for g in range(want.shape[1])])
    torch.testing.assert_close(result.vectors["mean_abs_effect"], by_hand, atol=1e-12, rtol=0)
    assert result.scalars["mean_abs_effect"] == pytest.approx(float(want.abs()[real].mean()), abs=1e-12)
    with pytest.raises(ValueError, match="pass a function of the probe's inputs"):
        InputEffectAudit(feature_mask=w, baseline=MASK).run(bert, probe)
    with pytest.raises(ValueError, match=r"\[1 or 6, \.\.\.\].*\[3, 12\]"):
        InputEffectAudit(feature_mask=lambda x: words(x)[:3], baseline=MASK).run(bert, probe)
    with pytest.raises(TypeError, match="integer tensor of group ids"):
        InputEffectAudit(feature_mask=lambda x: x.float(), baseline=MASK).run(bert, probe)
