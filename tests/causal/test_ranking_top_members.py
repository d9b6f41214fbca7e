"""topk_overlap's top-k sets are taken without sorting whole rows (``ranking._in_top``): they must be the sets a full
stable sort gives (``rank_positions(...) < k``, ties by lower group id, invalid groups last), on rows full of ties,
``-inf`` scores and masks."""

import pytest
import torch

from lightning_causal.causal.engine.ranking import _in_top, rank_positions, topk_overlap


@pytest.mark.parametrize("masked", [False, True])
def test_the_top_sets_are_those_of_a_full_stable_sort_on_rows_of_ties(masked):
    g = torch.Generator().manual_seed(3)
    for _ in range(150):
        n, groups = int(torch.randint(1, 6, (1,), generator=g)), int(torch.randint(2, 30, (1,), generator=g))
        s = torch.randint(0, int(torch.randint(1, 5, (1,), generator=g)), (n, groups), generator=g).float()
        s[torch.rand(n, groups, generator=g) < 0.15] = float("-inf")
        valid = torch.rand(n, groups, generator=g) < 0.7 if masked else None
        size = valid.sum(1, keepdim=True) if masked else torch.full((n, 1), groups)
        kn = size.clamp_max(int(torch.randint(1, groups + 1, (1,), generator=g)))
        rows = kn.squeeze(1) > 0
        assert torch.equal(_in_top(s, valid, kn)[rows], (rank_positions(s, valid) < kn)[rows])


def test_ties_at_the_kth_score_go_to_the_lower_group_ids():
    scores = torch.tensor([[1.0, 2.0, 2.0, 2.0, 0.0]])
    assert _in_top(scores, None, torch.tensor([[2]])).tolist() == [[False, True, True, False, False]]
    # with group 1 invalid the two tied valid groups of lowest id are 2 and 3
    valid = torch.tensor([[True, False, True, True, True]])
    assert _in_top(scores, valid, torch.tensor([[2]])).tolist() == [[False, False, True, True, False]]
    # the overlap by hand: a's top 2 = {1, 2}, b's top 2 = {2, 3} (ties by lower id) -> 1/2
    assert topk_overlap(scores, torch.tensor([[0.0, 1.0, 3.0, 3.0, 3.0]]), 2, ties="first").item() == 0.5


def test_rows_without_valid_groups_take_nothing():
    scores = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    valid = torch.tensor([[False, False], [False, False]])
    assert not _in_top(scores, valid, torch.zeros(2, 1, dtype=torch.long)).any()
    assert topk_overlap(scores, scores, 1, valid).isnan().all()
