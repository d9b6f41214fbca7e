"""A boolean rows-alike attention mask's sense told once per mask over all the call's tensors (mends_s40f)."""

import warnings

import torch

from lightning_causal.causal.engine.ablation import (
    _rows_alike,
    _rows_alike_sense,
    key_padding,
    padding_positions,
)


def _bert_call(n: int = 3, t: int = 5):
    keep = torch.ones(n, t, dtype=torch.bool)
    keep[0, 3:] = False
    keep[1, 4:] = False
    ids = torch.randint(2, 50, (n, t)).masked_fill(~keep, 0)
    mask = keep[:, None, None, :].expand(n, 1, t, t).clone()  # rows alike, True = attend
    return ids, mask, keep


def test_all_zero_token_type_ids_beside_a_rows_alike_mask_raise_no_warning():
    ids, mask, keep = _bert_call()
    for other in ("token_type_ids", "position_ids"):
        extra = torch.zeros_like(ids) if other == "token_type_ids" else torch.arange(5).expand(3, 5).clone()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            pad = padding_positions(ids, {"attention_mask": mask, other: extra})
        assert pad is not None and torch.equal(pad, ~keep), other


def test_nan_padded_sequences_tell_the_sense():
    keys = torch.tensor([[True, True, False], [True, False, False]])
    x = torch.randn(2, 3, 4)
    x[~keys] = float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(_rows_alike_sense(keys, x), keys)
        assert torch.equal(_rows_alike_sense(~keys, x), keys)
        assert torch.equal(key_padding(keys[:, None, :].expand(2, 3, 3), x), keys)


def test_rows_alike_tells_a_causal_mask_from_an_expanded_one():
    causal = torch.ones(4, 4, dtype=torch.bool).tril().expand(2, 3, 4, 4)
    assert not _rows_alike(causal)
    assert _rows_alike(torch.tensor([[True, True, False]])[:, None, None].expand(1, 3, 3, 3))
    middle = torch.ones(1, 3, 3, dtype=torch.bool)
    middle[0, 1, 0] = False  # first and last rows alike, a middle one not
    assert not _rows_alike(middle)
