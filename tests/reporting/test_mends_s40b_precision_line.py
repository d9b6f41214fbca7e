"""A final read of the card's precision line: under a bfloat16 autocast over float32 weights with some float64 or float16
ones, the line blamed "the rounding of the outputs through the bfloat16 weights", and no weight was bfloat16. The rounding
is named "there" (the dtype the audits computed in) where the coarsest half precision is the autocast's or most weights',
and "through the <dtype> weights" only where some weights hold it."""

import pytest

from lightning_causal.reporting.summary import precision_line


@pytest.mark.parametrize("others", [["float64"], ["float16"], ["float16", "float64"]])
def test_bfloat16_autocast_over_other_weights_names_no_bfloat16_weights(others):
    line = precision_line({"weights": "float32", "other_weights": others, "autocast": "bfloat16", "trainer": "bf16-mixed"})
    assert line.startswith("Precision: the audits computed in bfloat16 under autocast (the weights in float32, some in ")
    assert "bfloat16 weights" not in line  # before: "through the bfloat16 weights"
    assert "the rounding of the outputs there (0.39% of their size)" in line


def test_half_weights_beside_others_name_them():
    line = precision_line({"weights": "float32", "other_weights": ["bfloat16"], "autocast": None, "trainer": None})
    assert "the rounding of the outputs through the bfloat16 weights (0.39% of their size)" in line
    line = precision_line({"weights": "float32", "other_weights": ["float16"], "autocast": "float16", "trainer": None})
    assert "the rounding of the outputs there (0.05% of their size)" in line  # the autocast's dtype, also some weights'
    line = precision_line({"weights": "float16", "other_weights": ["float32"], "autocast": None, "trainer": "16-true"})
    assert line.startswith("Precision: the audits computed in float16, the dtype of most weights (some in float32)")
    assert "the rounding of the outputs there (0.05% of their size)" in line
