"""Augmented copies for repair terms: mixup and 1-pixel shifts, checked by hand."""

import pytest
import torch

from lightning_causal.repair.augment import augmented_copies, resolve_augment, shifted


def test_shift_moves_content_by_one_pixel_with_zero_padding():
    x = torch.arange(1.0, 10.0).view(1, 1, 3, 3).repeat(3, 1, 1, 1)
    out = shifted(x, torch.tensor([1, 0, -1]), torch.tensor([0, -1, 1]))
    assert torch.equal(out[0, 0], torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))  # down
    assert torch.equal(out[1, 0], torch.tensor([[2.0, 3.0, 0.0], [5.0, 6.0, 0.0], [8.0, 9.0, 0.0]]))  # left
    assert torch.equal(out[2, 0], torch.tensor([[0.0, 4.0, 5.0], [0.0, 7.0, 8.0], [0.0, 0.0, 0.0]]))  # up and right
    assert torch.equal(shifted(x, torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.long)), x)


def test_mixup_rows_lie_between_their_sources():
    x = torch.rand(8, 1, 3, 3, generator=torch.Generator().manual_seed(0))
    copies, a, b = augmented_copies(x, ("mixup", "shift"), torch.Generator().manual_seed(1))
    assert copies.shape == (16, 1, 3, 3) and torch.equal(a, torch.cat([torch.arange(8), torch.arange(8)]))
    mix, xa, xb = copies[:8].flatten(1), x[a[:8]].flatten(1), x[b[:8]].flatten(1)
    lam = ((mix - xb) * (xa - xb)).sum(1) / (xa - xb).pow(2).sum(1).clamp_min(1e-12)  # the λ of each row
    assert torch.allclose(mix, lam[:, None] * xa + (1 - lam[:, None]) * xb, atol=1e-6) and bool(((lam >= 0) & (lam <= 1)).all())
    assert torch.equal(b[8:], a[8:])  # a shifted row has one source
    again, _, _ = augmented_copies(x, ("mixup", "shift"), torch.Generator().manual_seed(1))
    assert torch.equal(again, copies)  # the private generator alone decides


def test_resolve_augment():
    img, tab = torch.zeros(2, 1, 4, 4), torch.zeros(2, 3)
    assert resolve_augment("auto", img) == ("mixup", "shift") and resolve_augment("auto", tab) == ("mixup",)
    assert resolve_augment(None, img) == () == resolve_augment("none", tab)
    assert resolve_augment("shift", img) == ("shift",)
    with pytest.raises(ValueError, match="`augment`"):
        resolve_augment("cutout", img)
    with pytest.raises(ValueError, match="shift"):
        resolve_augment("mixup+shift", tab)
    assert augmented_copies(tab, (), torch.Generator())[0].shape == (0, 3)
