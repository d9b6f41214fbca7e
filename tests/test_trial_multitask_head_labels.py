"""Trial "multitask": an `unpack_batch=` returning the labels of every head of a model of several outputs,
{'cls': y, 'reg': r}. The refusal said only 'got dict'; it now names the keys and the way: one head's
labels per callback, each with its own `unpack_batch=`."""

import pytest
import torch

from lightning_causal.batches import unpack


@pytest.mark.parametrize("labels", [lambda b: {"cls": b[1], "reg": b[2]}, lambda b: (b[1], b[2])])
def test_the_labels_of_several_heads_are_refused_naming_one_head_per_callback(labels):
    batch = (torch.zeros(4, 3), torch.zeros(4, dtype=torch.long), torch.zeros(4, 1))
    with pytest.raises(ValueError, match=r"got (a dict with keys \['cls', 'reg'\]|a tuple of 2 items).*the labels of one head.*"
                                         r"one head's labels per callback, each with its own `unpack_batch=`"):
        unpack(batch, lambda b: (b[0], labels(b), None))
    x, y, args = unpack(batch, lambda b: (b[0], b[2], None))  # the regression head's labels: accepted
    assert y is batch[2] and args is None
