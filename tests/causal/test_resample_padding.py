"""Resample from a padded reference: a row whose position is real was set to a padded sample's
hidden state there (never read by the model's output, moved by the pad id)."""

import pytest
import torch

from lightning_causal.causal.engine.ablation import position_mean
from lightning_causal.causal.engine.interventions import Resample


def test_padded_positions_of_the_reference_hold_the_real_mean():
    ref = torch.tensor([[[1.0], [4.0], [9.0]], [[3.0], [99.0], [77.0]]])  # [M=2, T=3, D=1]
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    iv = Resample(ref, torch.Generator().manual_seed(0), unit_dim=-1, attention_mask=mask)
    mean = position_mean(ref, mask.bool())
    assert torch.equal(iv.reference[0], ref[0])  # real everywhere: as it was
    assert torch.equal(iv.reference[1], torch.stack([ref[1, 0], mean[0, 1], mean[0, 2]]))  # [3, 4, 9]
    drawn = iv(torch.zeros(6, 3, 1))
    assert set(drawn.flatten().tolist()) <= {1.0, 3.0, 4.0, 9.0}  # 99 and 77 (padding) are never drawn
    other_pad = ref.clone()
    other_pad[1, 1:] = -5.0  # what the padding holds changes nothing
    again = Resample(other_pad, torch.Generator().manual_seed(0), unit_dim=-1, attention_mask=mask)
    assert torch.equal(again(torch.zeros(6, 3, 1)), Resample(ref, torch.Generator().manual_seed(0), unit_dim=-1, attention_mask=mask)(torch.zeros(6, 3, 1)))
    unmasked = Resample(ref, torch.Generator().manual_seed(0), unit_dim=-1)
    assert torch.equal(unmasked.reference, ref)  # without a mask: as before
    with pytest.raises(ValueError, match=r"`attention_mask` of shape \[M, T\] = \[2, 3\]"):
        Resample(ref, attention_mask=torch.ones(2, 4))
