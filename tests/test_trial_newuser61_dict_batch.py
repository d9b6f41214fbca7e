"""A recommender's BPR batches as dicts of id tensors, ``{"user_id", "gender", "dense", "pos", "neg"}`` (newuser61
trial): the default ``unpack_batch`` cannot read them (no input key), and its advice was
``unpack_batch=lambda batch: (batch['user_id'], batch['gender'], None)``: the user's gender taken for labels and three
of the five tensors dropped. With three or more parts and no label name, the advice now passes every part as an input,
labels ``None``, in the order ``forward`` takes them; two parts keep the second as labels."""

from __future__ import annotations

import re

import pytest
import torch

from lightning_causal.batches import default_unpack_batch


def _advised(batch):
    with pytest.raises(ValueError) as err:
        default_unpack_batch(batch)
    return str(err.value), eval(re.search(r"`unpack_batch=(lambda batch: .*)`$", str(err.value)).group(1))


def test_a_dict_of_ids_is_advised_as_inputs_without_labels():
    batch = {"user_id": torch.tensor([3, 4]), "gender": torch.tensor([0, 1]), "dense": torch.zeros(2, 3),
             "pos": torch.tensor([7, 8]), "neg": torch.tensor([9, 5])}
    message, unpack = _advised(batch)
    inputs, labels, args = unpack(batch)
    assert labels is None and args is None
    assert [id(t) for t in inputs] == [id(t) for t in batch.values()]  # every tensor, none taken for labels
    assert "in the order `forward` takes them" in message


def test_two_named_parts_keep_the_second_as_labels():
    batch = {"image": torch.zeros(2, 1, 4, 4), "class": torch.tensor([0, 1])}
    message, unpack = _advised(batch)
    inputs, labels, _ = unpack(batch)
    assert inputs is batch["image"] and labels is batch["class"]
    assert "in the order" not in message
