"""The newuser13 trial (RoBERTa, GPT-2, ALBERT, DeBERTa-v2 tokenizers): docs/text.md's word groups for byte-level BPE
and SentencePiece vocabularies."""

from __future__ import annotations

import torch


def test_the_text_page_groups_byte_level_bpe_and_sentencepiece_tokens_into_words():
    """docs/text.md showed word groups for WordPiece (`##` pieces) only; a RoBERTa, GPT-2, ALBERT or DeBERTa-v2 user
    marks word starts by `Ġ`/`▁`. The page's `bpe_words`, on a hand-made vocabulary, right and left padded."""
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "text.md").read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", page, re.S) if "def bpe_words" in b]
    vocabulary = ["<pad>", "<s>", "</s>", "Hello", "Ġworld", "Ġwor", "ld", "▁the", "re"]
    ns = {"torch": torch, "vocabulary": vocabulary, "cls_id": 1, "sep_id": 2, "pad_id": 0}
    exec(compile(block, "<text.md bpe_words>", "exec"), ns)  # noqa: S102 - the docs' own example
    # <s> Hello Ġwor ld ▁the re </s> <pad>: words <s> | Hello | Ġwor ld | ▁the re | </s> (+ its padding)
    right = torch.tensor([[1, 3, 5, 6, 7, 8, 2, 0]])
    assert ns["bpe_words"](right).tolist() == [[0, 1, 2, 2, 3, 3, 4, 4]]
    left = torch.tensor([[0, 0, 1, 3, 4, 6, 2, 2]])  # <pad> <pad> <s> Hello Ġworld ld </s> </s>
    assert ns["bpe_words"](left).tolist() == [[0, 0, 0, 1, 2, 2, 3, 4]]
