"""A ``transformers.BatchEncoding`` cut to the probe's rows or joined from a ``DataLoader(batch_size=None)``'s items kept
the original rows' tokenizer encodings (``_encodings``, shared by the copy ``mapping_like`` makes): an
``unpack_batch`` aligning per-word labels with ``b.word_ids(i)`` read, past the first item, another row's words or
raised (final read's leftover). A cut or joined encoding now holds its own rows' encodings."""

import pytest
import torch
from torch.utils.data import DataLoader

from lightning_causal.data_reading import read_samples

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")


def _tokenizer():
    vocab = {"[PAD]": 0, "[UNK]": 1, "a": 2, "b": 3, "c": 4, "d": 5}
    made = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    made.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    return transformers.PreTrainedTokenizerFast(tokenizer_object=made, pad_token="[PAD]", unk_token="[UNK]")


def test_a_cut_encoding_reads_its_own_rows_words():
    tokenizer = _tokenizer()
    texts = ["a b", "c", "d d d", "a", "b c"]
    encoded = tokenizer(texts, padding=True, return_tensors="pt")
    head = read_samples(encoded, 3)
    assert head["input_ids"].shape == (3, 3) and [head.word_ids(i) for i in range(3)] == [encoded.word_ids(i) for i in range(3)]
    with pytest.raises(IndexError):
        head.word_ids(3)  # the fourth row is not in the probe (read the original's before)
    assert len(encoded._encodings) == 5  # the user's batch as it was


def test_joined_items_read_each_rows_words():
    tokenizer = _tokenizer()
    items = [tokenizer(["a b c", "d"], padding="max_length", max_length=4, return_tensors="pt"),
             tokenizer(["c c", "a b a"], padding="max_length", max_length=4, return_tensors="pt")]
    joined = read_samples(DataLoader(items, batch_size=None), 4)
    assert torch.equal(joined["input_ids"], torch.cat([i["input_ids"] for i in items]))
    assert [joined.word_ids(i) for i in range(4)] == [items[k].word_ids(i) for k in range(2) for i in range(2)]
