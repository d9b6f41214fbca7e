"""A mapping batch whose labels are under ``"targets"`` (a common name, e.g. detection and segmentation datamodules)
had no labels read: the default `unpack_batch` took the labels as None and its unread-keys warning advised passing
``targets`` to ``forward`` as a keyword argument. ``"targets"`` is now a label key, after the four others."""

import torch

from lightning_causal.batches import default_unpack_batch, unread_keys, unread_keys_message


def test_targets_key_read_as_labels():
    x, y = torch.zeros(3, 4), torch.tensor([0, 2, 1])
    inputs, labels, args = default_unpack_batch({"x": x, "targets": y})
    assert inputs is x and labels is y and args is None
    assert unread_keys({"x": x, "targets": y}) == []
    assert unread_keys_message({"x": x, "targets": y}, None, "The batches", "the audits") is None


def test_earlier_label_keys_keep_precedence():
    x, y, t = torch.zeros(3, 4), torch.tensor([0, 2, 1]), torch.tensor([1, 1, 1])
    assert default_unpack_batch({"x": x, "targets": t, "y": y})[1] is y
    assert default_unpack_batch({"x": x, "targets": t, "target": y})[1] is y
