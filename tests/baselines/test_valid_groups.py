"""Rank metrics and perturbation curves restricted to each row's valid groups (``valid=``): padded
token positions must neither count as agreeing ties nor as steps of the curves."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from lightning_causal.baselines import metrics as M
from lightning_causal.causal.engine import ranking as R
from tests.helpers.models import hand_linear


def _ties_and_mask(g: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    a = torch.randint(0, 4, (6, g), generator=gen).double()  # many ties
    b = torch.randint(0, 4, (6, g), generator=gen).double()
    valid = torch.rand(6, g, generator=gen) < 0.6
    valid[0] = False  # no valid group
    valid[1] = False
    valid[1, 3] = True  # a single one
    valid[2] = True  # all of them
    a[3] = torch.where(valid[3], 2.0, a[3])  # constant on its valid groups only
    return a, b, valid


@pytest.mark.parametrize("g", [9, 200])  # 200 > 128: Kendall's blocked path over the pairs
def test_masked_ranks_spearman_kendall_equal_scipy_on_the_valid_entries(g):
    a, b, valid = _ties_and_mask(g)
    ranks, rho, tau = R.average_ranks(a, valid), R.spearman(a, b, valid), R.kendall(a, b, valid=valid)
    for n in range(a.shape[0]):
        av, bv = a[n, valid[n]].numpy(), b[n, valid[n]].numpy()
        assert torch.isnan(ranks[n, ~valid[n]]).all()
        assert ranks[n, valid[n]].tolist() == pytest.approx(stats.rankdata(av).tolist())
        if len(av) < 2 or len(set(av.tolist())) == 1:
            assert math.isnan(rho[n]) and math.isnan(tau[n]), n  # undefined: < 2 valid groups or constant on them
            continue
        assert rho[n].item() == pytest.approx(stats.spearmanr(av, bv).statistic, abs=1e-12)
        assert tau[n].item() == pytest.approx(stats.kendalltau(av, bv).statistic, abs=1e-12)  # tau-b
    everything = torch.ones_like(valid)
    torch.testing.assert_close(R.spearman(a, b, everything), R.spearman(a, b), atol=1e-12, rtol=0, equal_nan=True)
    torch.testing.assert_close(R.kendall(a, b, valid=everything), R.kendall(a, b), atol=1e-12, rtol=0, equal_nan=True)


def test_padding_groups_no_longer_count_as_agreeing_ties():
    a = torch.tensor([[1.0, 2.0, 3.0, 0.0, 0.0, 0.0]])
    b = torch.tensor([[3.0, 2.0, 1.0, 0.0, 0.0, 0.0]])  # reversed on the three real groups
    real = torch.tensor([[True, True, True, False, False, False]])
    assert R.spearman(a, b).item() > 0  # the old value: padding's ties outweigh the disagreement
    assert R.spearman(a, b, real).item() == -1.0 and R.kendall(a, b, valid=real).item() == pytest.approx(-1.0)
    assert R.topk_overlap(a, b, 2, real).item() == 0.5  # top-2 {2, 1} vs {0, 1}


def test_masked_topk_overlap_and_rank_positions_by_hand():
    a = torch.tensor([[4.0, 3.0, 2.0, 1.0], [4.0, 3.0, 2.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    b = torch.tensor([[1.0, 4.0, 3.0, 2.0], [1.0, 4.0, 3.0, 2.0], [1.0, 1.0, 1.0, 1.0]])
    valid = torch.tensor([[True, True, True, True], [True, False, True, False], [False, False, False, False]])
    got = R.topk_overlap(a, b, 3, valid)
    # row 0: {0, 1, 2} vs {1, 2, 3}: 2 of 3; row 1: k capped at 2 valid groups, {0, 2} vs {2, 0}: 1; row 2: none valid
    assert got[:2].tolist() == pytest.approx([2 / 3, 1.0]) and math.isnan(got[2])
    assert R.rank_positions(a, valid).tolist() == [[0, 1, 2, 3], [0, 2, 1, 3], [0, 1, 2, 3]]  # invalid last, ties by id
    assert torch.equal(R.rank_positions(b, torch.ones_like(valid)), R.rank_positions(b))


@pytest.mark.parametrize("call", [
    lambda a, v: R.spearman(a, a, v), lambda a, v: R.kendall(a, a, valid=v), lambda a, v: R.topk_overlap(a, a, 1, v),
    lambda a, v: R.average_ranks(a, v), lambda a, v: R.rank_positions(a, v),
])
@pytest.mark.parametrize("bad", [torch.ones(2, 3), torch.ones(2, 4, dtype=torch.bool), "all"])
def test_valid_must_be_a_boolean_mask_of_the_scores_shape(call, bad):
    with pytest.raises(ValueError, match="`valid` to be None or a boolean tensor of shape \\[2, 3\\]"):
        call(torch.zeros(2, 3), bad)


# ---------------------------------------------------------------- curves


def test_curves_rank_and_replace_only_valid_groups_with_per_row_steps():
    # f(x) = 3 x0 - x1 + 2 x2 + 5 x3 + 7 x4 at x = 1: f = 16. Row 0's real groups: 0, 1, 2; row 1's: 0, 1.
    # The padding groups score highest: ranked anyway, they would be removed first.
    model, x, mask = hand_linear([3.0, -1.0, 2.0, 5.0, 7.0]), torch.ones(2, 5), torch.arange(5).unsqueeze(0)
    scores = torch.tensor([[3.0, -1.0, 2.0, 100.0, 100.0], [1.0, 2.0, 50.0, 50.0, 50.0]])
    valid = torch.tensor([[True, True, True, False, False], [True, True, False, False, False]])
    frac, dele = M.perturbation_curve(model, x, mask, scores, score="raw", valid=valid)  # S = min(max G_n, 32) = 3
    _, ins = M.perturbation_curve(model, x, mask, scores, mode="insertion", score="raw", valid=valid)
    # row 0: k = 0, 1, 2, 3 of the order 0, 2, 1; row 1: k = round(s 2 / 3) = 0, 1, 1, 2 of the order 1, 0
    torch.testing.assert_close(frac, torch.tensor([[0.0, 1 / 3, 2 / 3, 1.0], [0.0, 0.5, 0.5, 1.0]]))
    torch.testing.assert_close(dele, torch.tensor([[16.0, 13.0, 11.0, 12.0], [16.0, 17.0, 17.0, 14.0]]))
    # insertion keeps the padding groups (5 + 7 = 12 in row 0, 2 + 5 + 7 = 14 in row 1) at every step
    torch.testing.assert_close(ins, torch.tensor([[12.0, 15.0, 17.0, 16.0], [14.0, 13.0, 13.0, 16.0]]))
    # row 1 by hand: 0.5 (16 + 17) / 2 + 0 + 0.5 (17 + 14) / 2 = 16
    assert M.curve_auc(frac, dele).tolist() == pytest.approx([(14.5 + 12.0 + 11.5) / 3, 16.0])
    # the same rows with three more padding groups (weight 0: the model ignores them) give the same curves
    wide = hand_linear([3.0, -1.0, 2.0, 5.0, 7.0, 0.0, 0.0, 0.0])
    pad = torch.zeros(2, 3, dtype=torch.bool)
    frac8, dele8 = M.perturbation_curve(wide, torch.ones(2, 8), torch.arange(8).unsqueeze(0),
                                        torch.cat([scores, torch.full((2, 3), 1e3)], 1), score="raw",
                                        valid=torch.cat([valid, pad], 1))
    assert torch.equal(frac8, frac) and torch.equal(dele8, dele)


def test_all_valid_curves_equal_the_unmasked_ones():
    model, x = hand_linear([1.0, 2.0, -3.0, 0.5, 4.0]), torch.randn(3, 5, generator=torch.Generator().manual_seed(1))
    mask, scores = torch.arange(5).unsqueeze(0), torch.randn(3, 5, generator=torch.Generator().manual_seed(2))
    for mode in ("deletion", "insertion"):
        frac, curves = M.perturbation_curve(model, x, mask, scores, mode=mode, steps=3, score="raw")
        frac_v, curves_v = M.perturbation_curve(model, x, mask, scores, mode=mode, steps=3, score="raw",
                                                valid=torch.ones(3, 5, dtype=torch.bool))
        assert torch.equal(curves_v, curves) and torch.equal(frac_v, frac.expand(3, -1))
    with pytest.raises(ValueError, match="`valid`"):
        M.perturbation_curve(model, x, mask, scores, valid=torch.ones(3, 4, dtype=torch.bool))


def test_stability_ranks_only_the_valid_groups():
    ref = torch.tensor([[1.0, 2.0, 3.0, 0.0, 0.0, 0.0]])
    reversed_ = torch.tensor([[3.0, 2.0, 1.0, 0.0, 0.0, 0.0]])
    real = torch.tensor([[True, True, True, False, False, False]])
    assert M.stability(lambda z: reversed_, torch.ones(1, 6), 0.1, reference=ref).item() > 0
    assert M.stability(lambda z: reversed_, torch.ones(1, 6), 0.1, reference=ref, valid=real).item() == -1.0
    ids = torch.tensor([[1, 5, 6, 2, 0, 0]])
    got = M.token_stability(lambda z: reversed_, ids, ids > 2, 0.5, reference=ref, valid=real)
    assert got.item() == -1.0
