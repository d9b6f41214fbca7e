"""Dense outputs that the refusal of an output of more than two dimensions did not foresee (newuser51's trial).

- A quantile forecaster ``[N, T, F] -> [N, H, Q]`` (a pinball loss) was told only of per-position scores:
  ``out.mean(1)`` (its horizons averaged), ``out[:, 0]``, ``out[:, -1]`` (a language model's next token). The
  message names ``out[..., q]`` then ``target=h``, which explains quantile ``q`` of horizon ``h``.
- A segmentation model returning ``Categorical(logits=logits.permute(0, 2, 3, 1))`` has ``.logits``
  ``[N, H, W, C]``, classes last: the message's ``out.mean((2, 3))`` read on the distribution fails
  ("'Tensor' object is not callable": ``Categorical.mean``) and on its logits averages a row of pixels and the
  classes. The message names ``out.logits.mean((1, 2))``, the classes' mean log-probabilities over the pixels.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.distributions import Categorical

from lightning_causal.causal import input_effects, patch_mask

T, F, H, Q = 6, 2, 3, 3


class QuantileForecaster(nn.Module):
    """A linear map of the flattened window to H horizons x Q quantiles, no bias."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(T * F, H * Q, bias=False).double()
        with torch.no_grad():
            self.lin.weight.copy_(torch.arange(H * Q * T * F, dtype=torch.float64).reshape(H * Q, T * F).sin())

    def forward(self, x):
        return self.lin(x.flatten(1)).reshape(-1, H, Q)


def test_a_quantile_forecast_is_told_to_take_a_quantile_and_target_a_horizon():
    model = QuantileForecaster()
    x = torch.randn(4, T, F, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"for a forecast of quantiles \[N, H, Q\], `out\[\.\.\., q\]` for quantile q of "
                                         r"every horizon, then `target=h` for horizon h"):
        input_effects(model, x, target=2)
    got = input_effects(model, x, output=lambda out: out[..., 1], target=2)  # quantile 1 of horizon 2
    w = model.lin.weight.detach()[2 * Q + 1]  # row h * Q + q of the linear map
    torch.testing.assert_close(got, w * x.flatten(1), rtol=0, atol=1e-12)  # f - f|do(x_j := 0) = w_j x_j


class CategoricalSegmenter(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 2, 1)).double()

    def forward(self, x):
        return Categorical(logits=self.net(x).permute(0, 2, 3, 1))  # per-pixel classes, logits [N, H, W, C]


def test_a_categorical_over_pixels_is_told_its_classes_are_last_and_the_read_is_a_hand_do():
    model = CategoricalSegmenter().eval()
    x = torch.randn(3, 1, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match=r"a Categorical over the pixels holds the classes last, `out\.logits` "
                                         r"\[N, H, W, C\]: `out\.logits\.mean\(\(1, 2\)\)`"):
        input_effects(model, x, target=1)
    mask = patch_mask((1, 6, 6), 3)  # four 3x3 patches
    got = input_effects(model, x, feature_mask=mask, target=1, output=lambda out: out.logits.mean((1, 2)))
    with torch.no_grad():
        def score(z):  # class 1's log-probability (a Categorical's normalised logits) averaged over the pixels
            return model.net(z).log_softmax(1)[:, 1].mean((1, 2))
        hand = []
        for g in range(4):
            done = x.clone()
            done[(mask == g).expand_as(x)] = 0.0
            hand.append(score(x) - score(done))
    torch.testing.assert_close(got, torch.stack(hand, 1), rtol=0, atol=1e-12)
