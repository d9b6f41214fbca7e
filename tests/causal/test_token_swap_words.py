"""TokenSwap.from_words: word pairs looked up in a tokenizer; a word that maps to [UNK], splits into word
pieces or is a special token is refused (a pair holding [UNK] would swap every unknown word)."""

import pytest
import torch

from lightning_causal.causal import TokenSwap

transformers = pytest.importorskip("transformers")

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "he", "she", "his", "her", "nurse", "##s", "the"]


@pytest.fixture
def tokenizer(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(WORDS))
    return transformers.BertTokenizer(str(vocab))


def test_word_pairs_give_their_ids_and_swap_sentences(tokenizer):
    swap = TokenSwap.from_words([("he", "she"), ("His", "her")], tokenizer)  # BERT's tokenizer lowercases
    assert swap.pairs == [(5, 6), (7, 8)]
    ids = torch.tensor(tokenizer(["he saw her", "the nurse"], padding=True)["input_ids"])
    expected = ids.clone()
    expected[ids == 5], expected[ids == 6], expected[ids == 7], expected[ids == 8] = 6, 5, 8, 7
    assert torch.equal(swap.flip_counterfactual(ids), expected)
    assert (ids == 1).any()  # "saw" is unknown: [UNK] stays [UNK]
    assert torch.equal(swap.flip_counterfactual(ids)[ids == 1], ids[ids == 1])


@pytest.mark.parametrize(("pair", "message"), [
    (("he", "doctor"), r"'doctor' maps to the unknown token \(id 1\)"),
    (("nurses", "he"), r"'nurses' is split into the word pieces \['nurse', '##s'\]"),
    (("he", "[CLS]"), r"'\[CLS\]' is a special token"),
    (("he",), r"\(word, word\) pairs of strings"),
    ("ab", r"\(word, word\) pairs of strings"),
])
def test_words_that_are_no_single_token_are_refused(tokenizer, pair, message):
    with pytest.raises(ValueError, match=message):
        TokenSwap.from_words([pair], tokenizer)


def test_a_tokenizer_without_a_lookup_is_refused():
    with pytest.raises(TypeError, match="convert_tokens_to_ids"):
        TokenSwap.from_words([("he", "she")], object())
