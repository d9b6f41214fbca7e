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
