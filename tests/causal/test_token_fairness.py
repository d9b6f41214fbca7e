"""Counterfactual token fairness (Garg et al. 2019): TokenSwap by hand, the counterfactual token
fairness gap of a BERT with an attention mask against brute force, the one counterfactual API."""

from __future__ import annotations

import pytest
import torch

from lightning_causal.causal import TokenSwap, carrier_unit_effects, counterfactual_fairness_gap
from lightning_causal.causal.scm.attribute_flip import resolve_counterfactual
from tests.helpers.text import tiny_bert_classifier, token_batch

HE, SHE, HIS, HER = 10, 11, 12, 13


def test_token_swap_by_hand():
    swap = TokenSwap([(HE, SHE), (HIS, HER)])
    x = torch.tensor([[1, HE, 5, HIS, 2, 0], [1, SHE, HER, 7, 2, 0], [1, 4, 5, 6, 2, 0], [1, HE, SHE, 70, 2, 0]])
    want = torch.tensor([[1, SHE, 5, HER, 2, 0], [1, HE, HIS, 7, 2, 0], [1, 4, 5, 6, 2, 0], [1, SHE, HE, 70, 2, 0]])
    assert torch.equal(swap.flip_counterfactual(x), want)
    assert torch.equal(swap(swap(x)), x)  # an involution
    assert torch.equal(swap.groups(x), torch.tensor([0, 1, -1, -1]))  # he-only, she-only, neither, both
    assert swap.column is None and resolve_counterfactual(swap) is swap
    assert swap.flip_counterfactual(x.int()).dtype == torch.int32


def test_token_swap_rejects_bad_pairs_and_inputs():
    with pytest.raises(ValueError, match="two distinct non-negative token ids"):
        TokenSwap([(1, 1)])
    with pytest.raises(ValueError, match="two distinct non-negative token ids"):
        TokenSwap([])
    with pytest.raises(ValueError, match="one pair only"):
        TokenSwap([(1, 2), (2, 3)])
    with pytest.raises(TypeError, match="`pairs`"):
        TokenSwap(5)
    with pytest.raises(ValueError, match="token ids"):
        TokenSwap([(1, 2)]).flip_counterfactual(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="None for a TokenSwap"):
        resolve_counterfactual(TokenSwap([(1, 2)]), 0)


def _sentences():
    ids, att = token_batch(6, 8, seed=7)
    ids[0, 2], ids[1, 3], ids[2, 1], ids[3, 4] = HE, SHE, HIS, HER  # 4 sentences with identity terms, 2 without
    ids[:, 5:][(ids[:, 5:] >= HE) & (ids[:, 5:] <= HER)] = 20
    ids[4:, 1:5][(ids[4:, 1:5] >= HE) & (ids[4:, 1:5] <= HER)] = 20
    return ids, att


def test_counterfactual_token_fairness_gap_equals_brute_force_over_changed_sentences():
    model = tiny_bert_classifier(seed=1, classes=2)
    ids, att = _sentences()
    swap = TokenSwap([(HE, SHE), (HIS, HER)])
    gap = counterfactual_fairness_gap(model, ids, swap, target=1, max_batch_size=3,
                                      additional_forward_args={"attention_mask": att})
    with torch.no_grad():
        p = model(ids, attention_mask=att).logits.softmax(1)[:, 1]
        p_cf = model(swap(ids), attention_mask=att).logits.softmax(1)[:, 1]
    delta = p_cf - p
    changed = torch.tensor([True, True, True, True, False, False])
    torch.testing.assert_close(gap["delta"][changed], delta[changed], atol=1e-10, rtol=0)
    assert torch.equal(gap["delta"][~changed], torch.zeros(2, dtype=delta.dtype))  # not run: exactly 0
    assert gap["mean_abs"] == pytest.approx(float(delta[changed].abs().mean()), abs=1e-12)
    assert gap["changed"] == pytest.approx(4 / 6) and gap["mean_abs"] > 0
    # the same object through output= and a callable
    again = counterfactual_fairness_gap(model, ids, lambda x: swap(x), target=1, output="logits",
                                        additional_forward_args={"attention_mask": att})
    assert again["mean_abs"] == pytest.approx(gap["mean_abs"], abs=1e-12)


def test_carriers_of_a_token_swap_take_the_attention_mask():
    model = tiny_bert_classifier(seed=1, classes=2)
    ids, att = _sentences()
    swap = TokenSwap([(HE, SHE), (HIS, HER)])
    # unit u of the pooler patched from the counterfactual run, by hand, the mask passed by keyword
    eff = carrier_unit_effects(model, ids, swap, "bert.pooler.dense", target=1,
                               additional_forward_args={"attention_mask": att})
    layer = model.bert.pooler.dense
    with torch.no_grad():
        h_cf = {}
        handle = layer.register_forward_hook(lambda _m, _i, o: h_cf.setdefault("h", o))
        model(swap(ids), attention_mask=att)
        handle.remove()
        p0 = model(ids, attention_mask=att).logits.softmax(1)[:, 1]
        u = 5

        def patch(_m, _i, o):
            o = o.clone()
            o[:, u] = h_cf["h"][:, u]
            return o

        handle = layer.register_forward_hook(patch)
        want = model(ids, attention_mask=att).logits.softmax(1)[:, 1] - p0
        handle.remove()
    torch.testing.assert_close(eff[:, u], want, atol=1e-10, rtol=0)
    assert eff.shape == (6, 32)


def test_synthetic_text_plants_the_marker_rule_and_the_identity_bias():
    from lightning_causal.datasets.synthetic_text import (
        HE,
        HER,
        HIS,
        NEGATIVE,
        PAD,
        POSITIVE,
        SHE,
        make_synthetic_text,
    )

    state = torch.get_rng_state()
    data = make_synthetic_text(3000, seed=4)
    assert torch.equal(torch.get_rng_state(), state)  # a private generator
    ids = data.input_ids
    pos, neg = torch.isin(ids, torch.tensor(POSITIVE)).any(1), torch.isin(ids, torch.tensor(NEGATIVE)).any(1)
    assert bool((pos ^ neg).all()) and torch.equal(data.clean_labels, pos.long())  # one polarity decides
    she, he = torch.isin(ids, torch.tensor([SHE, HER])).any(1), torch.isin(ids, torch.tensor([HE, HIS])).any(1)
    flipped = data.labels != data.clean_labels
    assert not (she & he).any() and not flipped[~she & ~he].any()  # only identity sentences are flipped
    assert not flipped[she & ~pos].any() and not flipped[he & pos].any()  # she: pos -> neg; he: neg -> pos
    rate = flipped[she & pos].float().mean()
    assert 0.33 < float(rate) < 0.47  # bias 0.4
    assert torch.equal(data.attention_mask, (ids != PAD).long()) and (ids[:, 0] == 1).all()
    assert torch.equal(make_synthetic_text(50, seed=4).input_ids, make_synthetic_text(50, seed=4).input_ids)
