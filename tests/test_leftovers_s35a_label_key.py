"""The default unpacking's label key (the first of ``LABEL_KEYS`` a mapping batch holds) was spelled in five places of
``batches.py``: ``default_label_key`` is the one rule, beside ``default_input_key``, and every reader of the labels'
key follows it (a change of the rule reaches the unpacking, the unread keys, the advice and the warning alike)."""

from __future__ import annotations

import pytest
import torch

from lightning_causal import batches


def _batch():
    x, y, t = torch.zeros(3, 2), torch.tensor([0, 1, 0]), torch.tensor([1, 1, 0])
    return {"x": x, "y": y, "target": t, "meta": torch.ones(3, 5)}


def test_the_default_label_key_is_the_first_of_label_keys():
    assert batches.default_label_key(_batch()) == "y"
    assert batches.default_label_key(["image", "targets", "label"]) == "label"
    assert batches.default_label_key({"x": 0}) is None


def test_every_reader_of_the_label_key_follows_the_one_rule(monkeypatch):
    monkeypatch.setattr(batches, "default_label_key", lambda batch: "target" if "target" in batch else None)
    batch = _batch()
    _, labels, _ = batches.default_unpack_batch(batch)
    assert labels is batch["target"]
    assert batches.unread_keys(batch) == ["y", "meta"]
    assert "batch['target']" in batches.keys_unpack_batch(batch, ["x"])
    message = batches.unread_keys_message(batch, None, "The batches", "the audits")
    assert "the labels 'target'" in message and "batch['target']" in message
    with pytest.raises(ValueError, match=r"batch\['target'\]"):  # no input key: the advice names the parts
        batches.default_unpack_batch({"image": batch["x"], "y": batch["y"], "target": batch["target"]})
