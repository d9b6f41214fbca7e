"""The fix printed for a mapping batch of several inputs lists them in the batch's order. For
``{"tab", "image", "y"}`` and ``forward(self, image, tab)`` the lambda as printed calls
``model(tab, image)``: an error for inputs of different shapes, silently swapped inputs for two of
one shape. The advice now says that the order is ``forward``'s, not the batch's."""

import re

import pytest
import torch

from lightning_causal.batches import default_unpack_batch


def _advice(batch):
    with pytest.raises(ValueError) as info:
        default_unpack_batch(batch)
    return str(info.value)


def test_the_advice_for_several_named_inputs_warns_that_the_batch_order_is_no_guide():
    batch = {"tab": torch.zeros(2, 5), "image": torch.zeros(2, 1, 8, 8), "y": torch.zeros(2, dtype=torch.long)}
    message = _advice(batch)
    fix = re.search(r"`unpack_batch=(lambda batch: .*?)`", message).group(1)
    assert fix == "lambda batch: ((batch['tab'], batch['image']), batch['y'], None)"  # the batch's order, as it runs
    assert "with the inputs in the order `forward` takes them" in message
    assert eval(fix)(batch)[0][0] is batch["tab"]


def test_one_named_input_needs_no_order_note():
    message = _advice({"image": torch.zeros(2, 1, 8, 8), "y": torch.zeros(2, dtype=torch.long)})
    assert "`forward` takes them" not in message
