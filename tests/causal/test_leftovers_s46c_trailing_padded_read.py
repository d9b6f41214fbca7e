"""A last-position read sliced along a trailing dimension (``o[:, -1, :, 0]`` of per-position outputs ``[N, T, 2, 3]``)
was warned of as a mean over the padding, not as a read of a padded position: ``padded_reads`` compared a position
whole or one index of its leading dimensions only (mends_s45b's note). Any one index of some of its dimensions, the
others kept in order, is now compared; one number still is not, and a real position's slice is no padded read. The
audit's warning through ``input_effects`` is tested beside mends_s45b's reads, in test_mends_s45b_refusal_causes.py."""

from __future__ import annotations

import torch

from lightning_causal.causal.engine.padded_reads import padded_reads


def test_padded_reads_of_a_trailing_slice_by_hand() -> None:
    seq = torch.arange(2 * 3 * 2 * 3, dtype=torch.float).view(2, 3, 2, 3)  # [n, T, 2, 3], every entry its own
    pad = torch.tensor([[False, False, True], [False, False, False]])
    for k in range(3):
        assert padded_reads(seq, seq[:, -1, :, k], pad) == {0: [2]}
    assert padded_reads(seq, seq[:, 1, :, 2], pad) == {}  # a real position's slice
    assert padded_reads(seq, seq[:, -1, 1, 2], pad) == {}  # one number: not compared
    seq5 = torch.arange(2 * 3 * 2 * 3 * 4, dtype=torch.float).view(2, 3, 2, 3, 4)
    assert padded_reads(seq5, seq5[:, -1, :, 1, :], pad) == {0: [2]}  # a middle index, the others kept in order
    assert padded_reads(seq5, seq5[:, -1, 1, :, 3], pad) == {0: [2]}

