"""``SyntheticText.batch`` takes one int index too (examples/text_transformer.py's Dataset calls
``data.batch(i)``, which mypy flagged against the hint ``Tensor | slice``): the hint says ``int``, and an int
gives the sample of that row, unbatched."""

from __future__ import annotations

import typing

import torch

from lightning_causal.datasets import make_synthetic_text
from lightning_causal.datasets.synthetic_text import SyntheticText


def test_batch_of_an_int_is_that_row_unbatched():
    assert int in typing.get_args(typing.get_type_hints(SyntheticText.batch)["rows"])
    data = make_synthetic_text(8, seed=0)
    one, rows = data.batch(3), data.batch(slice(3, 4))
    assert one.keys() == rows.keys() == {"input_ids", "attention_mask", "labels"}
    for key in one:
        torch.testing.assert_close(one[key], rows[key][0])
