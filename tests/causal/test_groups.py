"""group_counts: the elements of each sample in each feature group, the core of real_groups and of
the layer map's real rows."""

import pytest
import torch

from lightning_causal.causal.engine.groups import group_counts


def test_group_counts_of_per_sample_words_with_padding_and_a_missing_group():
    ids = torch.zeros(3, 5, dtype=torch.long)
    words = torch.tensor([[0, 0, 1, 2, 3],   # four words; the last one lies in padding
                          [0, 1, 1, 1, 1],   # two words: groups 2 and 3 absent
                          [0, 1, 2, 2, 3]])
    keep = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    assert group_counts(ids, words, keep=keep).tolist() == [[2, 1, 1, 0], [1, 2, 0, 0], [1, 1, 2, 1]]
    assert group_counts(ids, words).tolist() == [[2, 1, 1, 1], [1, 4, 0, 0], [1, 1, 2, 1]]
    # padding given as [N, T, 1] (as padding_positions returns it for embeddings) and more groups than ids
    emb = torch.zeros(3, 5, 2)
    assert group_counts(emb, words.unsqueeze(-1), 6, keep=keep.unsqueeze(-1)).tolist() == [
        [4, 2, 2, 0, 0, 0], [2, 4, 0, 0, 0, 0], [2, 2, 4, 2, 0, 0]]


def test_group_counts_of_a_shared_mask_over_several_inputs():
    xs = (torch.zeros(2, 3), torch.zeros(2, 2, 2))
    masks = (torch.tensor([[0, 2, 2]]), torch.tensor([[[2, 4], [4, 4]]]))  # id 1 and 3 carried by no element
    assert group_counts(xs, masks).tolist() == [[1, 0, 3, 0, 3]] * 2
    assert group_counts(xs, masks, keep=(torch.tensor([[True, False, True], [True, True, True]]), None)).tolist() == [
        [1, 0, 2, 0, 3], [1, 0, 3, 0, 3]]


def test_group_counts_refuses_bad_arguments():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match=r"`num_groups` above every group id \(at least 3\) but got 2"):
        group_counts(x, torch.tensor([[0, 1, 2]]), 2)
    with pytest.raises(ValueError, match="one tensor per input"):
        group_counts((x, x), torch.tensor([[0, 1, 2]]))
    with pytest.raises(ValueError, match="`keep` to be booleans"):
        group_counts(x, torch.tensor([[0, 1, 2]]), keep=torch.ones(2, 3))
