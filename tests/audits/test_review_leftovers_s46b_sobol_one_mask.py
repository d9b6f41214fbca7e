"""SobolAudit takes one feature mask ``[1, ...]`` for all samples; since 5f6ddc2c (its mask resolved by
groups.group_mask) a mask of the input's dimensions whose first is neither 1 nor N, or one of more dimensions, got
group_mask's refusal "of shape [1 or N, ...]", which invites a per-sample mask that Sobol then refuses too. They get
Sobol's own words again ([1, ...] shared by all samples), and the masks it takes still give the same group ids."""

import pytest
import torch

from lightning_causal.audits.sobol import SobolAudit


@pytest.mark.parametrize(("x", "mask"), [
    (torch.zeros(4, 3), torch.tensor([[0, 1, 1]] * 2)),  # [2, 3]: neither 1 nor N
    (torch.zeros(4, 3), torch.tensor([[[0, 1, 1]]])),  # [1, 1, 3]: a dimension more
    (torch.zeros(4, 3), torch.tensor([[[0, 1, 1]]] * 4)),  # [4, 1, 3]
    (torch.zeros(1, 3), torch.tensor([[[0, 1, 1]]])),  # one sample, [1, 1, 3]
    (torch.zeros(4, 2, 3, 3), torch.zeros(1, 1, 2, 3, 3, dtype=torch.long)),
])
def test_a_mask_that_is_not_one_for_all_samples_is_refused_in_sobols_words(x, mask):
    with pytest.raises(ValueError) as info:
        SobolAudit(n=64, feature_mask=mask)._mask(x)
    said = str(info.value)
    assert said == (f"Expected argument `feature_mask` of shape [1, ...] shared by all samples of {list(x.shape)} "
                    f"but got {list(mask.shape)}")


def test_the_masks_it_takes_keep_their_group_ids():
    x = torch.zeros(4, 2, 3, 3)
    rows = torch.tensor([[0, 0, 0], [1, 1, 1], [2, 2, 2]])  # [H, W]: an image row a group, both channels alike
    got = SobolAudit(n=64, feature_mask=rows)._mask(x)
    assert got.shape == (1, 2, 3, 3) and torch.equal(got[0, 1], rows) and torch.equal(got[0, 0], rows)
    assert SobolAudit(n=64, feature_mask=rows[None, None])._mask(x).shape == (1, 2, 3, 3)  # [1, 1, H, W]
    with pytest.raises(ValueError, match=r"broadcastable to the input \[4, 3\] but got \[1, 2\]"):
        SobolAudit(n=64, feature_mask=torch.tensor([[0, 1]]))._mask(torch.zeros(4, 3))  # [1, ...] that does not fit
