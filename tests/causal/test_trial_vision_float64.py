"""Findings of the vision trial: a Python number given to a float64 model.

``input_effects(..., baseline=0.7)`` on a float64 CNN set the patches to 0.699999988 (0.7 went
through the default float32 before the input's dtype): effects off by ~1e-9, float32 precision
where the estimators promise the model's dtype.
"""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.causal import input_effects, patch_mask


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.GroupNorm(2, 8), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 3)).double().eval()


def test_a_float_baseline_of_a_float64_image_model_is_exact():
    model, x = _cnn(), torch.randn(4, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    mask = patch_mask((3, 8, 8), 4)  # 4 patches across the channels
    got = input_effects(model, x, mask, baseline=0.7, target=2)
    with torch.no_grad():
        base = model(x)[:, 2]
        expected = torch.stack([base - model(x.masked_fill((mask == g).expand_as(x), 0.7))[:, 2] for g in range(4)], 1)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-14)


def test_set_to_a_float_in_a_float64_model_is_exact():
    """``unit_effects(..., SetTo(0.7))`` on the depthwise convolution's channels of a float64 CNN."""
    from lightning_causal.causal import SetTo, unit_effects

    model, x = _cnn(), torch.randn(3, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    got = unit_effects(model, x, "3", SetTo(0.7), target=1)
    with torch.no_grad():
        base, cols = model(x)[:, 1], []
        for u in range(8):
            def set_channel(module, args, out, u=u):
                out = out.clone()
                out[:, u] = 0.7
                return out
            handle = model[3].register_forward_hook(set_channel)
            cols.append(base - model(x)[:, 1])
            handle.remove()
    torch.testing.assert_close(got, torch.stack(cols, 1), rtol=0, atol=1e-14)
