"""uint8 ``[N, D]`` inputs (carried fault): bytes or counts were drawn as token strips, each value a "token", as were
int8/int16 columns. The engine knows token ids as the inputs an nn.Embedding reads, and an embedding indexes with
int64 or int32 only (uint8 indices are refused), so the figure kind follows that: uint8/int8/int16 columns are tabular
bars, unless the audit's meta holds a vocabulary (the words of byte-level ids); int64/int32 ids stay tokens."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.reporting.figure_kinds import INDEX_DTYPES, MapData, infer_kind, map_figures

G = torch.Generator().manual_seed(0)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16])
def test_byte_and_count_columns_are_drawn_as_tabular_bars(dtype):
    x = torch.randint(0, 100, (6, 5), generator=G).to(dtype)
    [(tag, fig)] = map_figures(MapData(x, {"causal": torch.randn(6, 5, generator=G)}, "causal_attribution", {"outputs": 1}))
    assert tag == "maps/top_features"  # a token strip per sample was maps/sample_0, ...
    assert sorted(t.get_text() for t in fig.axes[0].get_yticklabels()) == ["x0", "x1", "x2", "x3", "x4"]


def test_index_dtypes_stay_tokens_and_a_vocabulary_makes_bytes_tokens():
    assert [infer_kind(torch.zeros(4, 6, dtype=d)) for d in (torch.int64, torch.int32, torch.uint8)] == ["tokens", "tokens", "tabular"]
    assert infer_kind(torch.zeros(4, 6, dtype=torch.uint8), {"vocabulary": [chr(i) for i in range(256)]}) == "tokens"
    assert infer_kind(torch.zeros(4, 6, dtype=torch.bool), {"vocabulary": ["a"]}) == "tabular"  # a mask is no id


def test_index_dtypes_are_what_an_embedding_takes():
    embedding = nn.Embedding(10, 2)
    for dtype in (torch.int64, torch.int32, torch.uint8, torch.int16):
        try:
            embedding(torch.zeros(1, 3, dtype=dtype))
            took = True
        except RuntimeError:
            took = False
        assert took == (dtype in INDEX_DTYPES), dtype


def test_the_figures_read_the_engines_token_id_dtypes():
    """Which integers are token ids is said once (token_ids.INDEX_DTYPES, which the baselines and CaptumBaseline read):
    the figures took their own copy of the tuple, which a change to the engine's would have left behind."""
    from lightning_causal.causal.engine import token_ids

    assert INDEX_DTYPES is token_ids.INDEX_DTYPES
