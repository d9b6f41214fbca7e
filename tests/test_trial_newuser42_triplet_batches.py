"""A metric-learning batch of three tensors of one shape, ``(anchor, positive, negative)`` of a triplet loss
(newuser42 trial). The default reading refused it with advice for ``(x, y, w)`` and ``(x, lengths, y)`` only;
followed as written, ``unpack_batch=lambda batch: (batch[0], batch[1], None)`` took the positives for labels, and
the audits warned of "a regression, e.g. a forecast of 16 horizons?". The refusal now says how to read triplets."""

from __future__ import annotations

import pytest
import torch

from lightning_causal.batches import default_unpack_batch

TRIPLET_FIX = "`unpack_batch=lambda batch: (batch[0], None, None)` explains the anchors"


def test_three_inputs_of_one_shape_are_answered_as_triplets():
    a, p, n = torch.rand(3, 5, 1, 8, 8)
    with pytest.raises(ValueError, match=r"for batches \(x, y, w\)") as err:
        default_unpack_batch((a, p, n))
    assert "for three inputs of one shape [N, 1, 8, 8], (anchor, positive, negative) of a triplet loss" in str(err.value)
    assert TRIPLET_FIX in str(err.value)


@pytest.mark.parametrize("batch", [(torch.rand(5, 4), torch.arange(5), torch.rand(5)),  # (x, y, w)
                                   (torch.rand(5, 7, 3), torch.full((5,), 7), torch.arange(5))])  # (x, lengths, y)
def test_other_batches_of_three_are_not(batch):
    with pytest.raises(ValueError, match=r"for batches \(x, y, w\)") as err:
        default_unpack_batch(batch)
    assert "triplet" not in str(err.value)
