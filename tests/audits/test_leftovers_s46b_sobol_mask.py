"""SobolAudit._mask was a near-copy of groups.group_mask (check_patch_inputs, make_feature_mask, its own right
alignment): it now calls group_mask and keeps its own test, one mask [1, ...] for all samples, expanded to one sample's
shape. Hand-written group ids for each way a mask is given."""

import pytest
import torch

from lightning_causal.audits.sobol import SobolAudit


def _mask(x, **kw):
    return SobolAudit(n=64, **kw)._mask(x)


def test_a_mask_of_fewer_dimensions_is_right_aligned_and_expanded_to_one_samples_shape():
    rows = torch.arange(16).reshape(4, 4) // 4  # [H, W]: one group per image row, every channel alike
    got = _mask(torch.zeros(4, 3, 4, 4), feature_mask=rows)
    assert got.shape == (1, 3, 4, 4)
    assert got[0, 2, :, 0].tolist() == [0, 1, 2, 3] and got[0, 0, 3].tolist() == [3, 3, 3, 3]
    halves = (torch.arange(48).reshape(3, 4, 4) // 24).int()  # one sample's [C, H, W], int32
    got = _mask(torch.zeros(4, 3, 4, 4), feature_mask=halves)
    assert got.shape == (1, 3, 4, 4) and got.flatten().tolist() == [0] * 24 + [1] * 24
    assert _mask(torch.zeros(4, 3), feature_mask=torch.tensor([0, 0, 1])).tolist() == [[0, 0, 1]]


def test_patches_and_one_group_per_element():
    assert _mask(torch.zeros(4, 1, 4, 4), patch_size=2)[0, 0].tolist() == [[0, 0, 1, 1], [0, 0, 1, 1],
                                                                            [2, 2, 3, 3], [2, 2, 3, 3]]
    assert _mask(torch.zeros(4, 3)).tolist() == [[0, 1, 2]]


def test_masks_that_do_not_fit_are_refused():
    with pytest.raises(ValueError, match=r"shared by all samples of \[4, 3\] but got \[4, 3\]"):
        _mask(torch.zeros(4, 3), feature_mask=torch.tensor([[0, 0, 1]] * 4))  # per-sample masks: not Sobol's
    with pytest.raises(ValueError, match=r"broadcastable to the input \[4, 3\] but got \[1, 2\]"):
        _mask(torch.zeros(4, 3), feature_mask=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="a flattened image"):
        _mask(torch.zeros(4, 64), patch_size=2)
