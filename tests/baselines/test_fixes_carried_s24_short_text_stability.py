"""Token stability saturated on short texts: each eligible token was replaced with probability ``share`` (0.1),
so a text of 4 tokens was left as it was in 0.9^4 = 66% of the samples (and a replacement could be the same
token), its Spearman rho exactly 1 whatever the method. Every method was pulled towards 1 and towards the
others: one that any change re-ranks read 0.61 on texts of 4 tokens against 0.05 on texts of 32 (n_repeats=1).
Now every sample with an eligible token has at least one replaced, by another token."""

import pytest
import torch

from lightning_causal.baselines.metrics import token_stability

IDS = torch.randint(3, 40, (32, 4), generator=torch.Generator().manual_seed(0))  # 32 texts of 4 tokens


def _reranked_by_any_change(z: torch.Tensor) -> torch.Tensor:
    """Scores that any change of a text reverses: rho = -1 on every perturbed text, 1 on one left as it was."""
    ranks = torch.arange(z.shape[1], dtype=torch.float64).expand(z.shape[0], -1)
    changed = (z != IDS).any(1, keepdim=True)
    return torch.where(changed, ranks.flip(1), ranks)


def test_a_method_any_change_re_ranks_reads_minus_one_on_texts_of_four_tokens() -> None:
    got = token_stability(_reranked_by_any_change, IDS, torch.ones_like(IDS, dtype=torch.bool), 0.1, seed=0)
    assert torch.equal(got, torch.full((32,), -1.0, dtype=torch.float64))  # every text perturbed


def test_a_stable_method_is_told_apart_from_it() -> None:
    table = torch.randn(40, generator=torch.Generator().manual_seed(1)).abs()
    stable = token_stability(lambda z: table[z], IDS, torch.ones_like(IDS, dtype=torch.bool), 0.1, n_repeats=4, seed=0)
    unstable = token_stability(_reranked_by_any_change, IDS, torch.ones_like(IDS, dtype=torch.bool), 0.1, n_repeats=4, seed=0)
    assert stable.mean() > 0.5 and unstable.mean() == -1.0  # one token of four changes one score of four


@pytest.mark.parametrize("pool", ["probe", "position"])
def test_each_sample_gets_at_least_one_other_token(pool: str) -> None:
    ids = torch.tensor([[1, 5, 6, 2], [1, 6, 5, 2], [1, 5, 5, 2], [1, 6, 6, 2], [1, 7, 7, 2]])  # two or three words a position
    eligible = ids > 2
    seen = []
    token_stability(lambda z: seen.append(z.clone()) or z.float(), ids, eligible, 0.01, n_repeats=8, seed=0, pool=pool)
    for z in seen[1:]:
        assert torch.equal(z[~eligible], ids[~eligible])  # special tokens kept
        assert ((z != ids) & eligible).any(1).all()  # at least one token of every text replaced by another
    assert torch.equal(token_stability(lambda z: z.float(), ids, eligible, 0.0), torch.ones(5))  # share 0: none
