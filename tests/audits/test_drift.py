import pytest
import torch
from scipy.stats import spearmanr

from lightning_causal.audits.drift import importance_shift, spearman, topk_jaccard, vector_drift


@pytest.mark.parametrize("seed", range(4))
def test_spearman_matches_scipy_with_ties(seed):
    g = torch.Generator().manual_seed(seed)
    a = torch.randint(0, 5, (30,), generator=g).double()  # many ties
    b = a + torch.randint(0, 3, (30,), generator=g).double()
    assert spearman(a, b) == pytest.approx(spearmanr(a.numpy(), b.numpy()).statistic, abs=1e-12)


def test_spearman_extremes_and_constant():
    v = torch.arange(5.0)
    assert spearman(v, v) == pytest.approx(1.0)
    assert spearman(v, -v) == pytest.approx(-1.0)
    assert spearman(v, torch.ones(5)) != spearman(v, torch.ones(5))  # NaN: undefined, not hidden
    with pytest.raises(ValueError, match="1-D"):
        spearman(v, torch.ones(4))


def test_topk_jaccard_and_shift_hand_values():
    a = torch.tensor([4.0, 3.0, 2.0, 1.0])
    b = torch.tensor([4.0, 1.0, 2.0, 3.0])
    assert topk_jaccard(a, b, 2) == pytest.approx(1 / 3)  # {0,1} vs {0,3}
    assert topk_jaccard(a, a, 3) == 1.0
    assert importance_shift(a, a) == 0.0
    # normalised |a| = [.4,.3,.2,.1], |b| = [.4,.1,.2,.3]: TV = 0.5 * (0.2 + 0.2)
    assert importance_shift(a, b) == pytest.approx(0.2)
    assert importance_shift(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])) == pytest.approx(1.0)


def test_vector_drift_only_for_matching_vectors():
    out = vector_drift({"a": torch.arange(4.0), "b": torch.ones(3)}, {"a": torch.arange(4.0), "b": torch.ones(2), "c": torch.ones(3)})
    assert set(out) == {"drift/a/spearman", "drift/a/topk_jaccard", "drift/a/shift"}
    assert out["drift/a/spearman"] == pytest.approx(1.0) and out["drift/a/shift"] == 0.0


def test_topk_jaccard_ranks_by_magnitude():
    # the two dominant effects are negative: signed ranking took the tiny positive ones as the "top"
    from lightning_causal.audits.drift import topk_jaccard

    a = torch.tensor([-5.0, -4.0, 0.1, 0.2, 0.0])
    b = torch.tensor([-5.0, -4.0, 0.2, 0.0, 0.1])
    assert topk_jaccard(a, b, 2) == 1.0
    assert topk_jaccard(a, torch.tensor([0.1, -4.0, -5.0, 0.2, 0.0]), 2) == 1 / 3
