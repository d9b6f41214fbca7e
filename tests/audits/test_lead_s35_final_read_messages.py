"""Final read of session 35 (git diff c92c0aac), two messages that misfired on ordinary models.

- feca39c2's segmentation hint fired on any target of two or more dimensions whose first size is N: a plain classifier
  given one-hot rows ``target=F.one_hot(y, 3)`` was told its target is "a segmentation mask" with a region ``8:16``.
  Two-dimensional targets now get the one-hot advice (``argmax(1)``); the mask wording stays for [N, H, W].
- eeb61505 left category codes out of CaptumBaseline's ``noise_sigma=``: with ``noise_sigma=0.0`` the masked sigma was
  all zeros, so stability was dropped with a note that the noise "would move only category codes" though the numeric
  columns vary. ``noise_sigma`` is the user's own scale: measured as given.
"""
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal import CaptumBaseline, Probe
from lightning_causal.causal import column_mask, input_effects


def test_a_one_hot_target_is_told_argmax_not_segmentation():
    torch.manual_seed(0)
    model = nn.Linear(4, 3).eval()
    x, y = torch.randn(6, 4), torch.arange(6) % 3
    with pytest.raises(ValueError) as err:
        input_effects(model, x, column_mask(4), target=F.one_hot(y, 3))
    message = str(err.value)
    assert "target=y.argmax(1)" in message
    assert "segmentation" not in message and "8:16" not in message


def test_a_mask_target_keeps_the_segmentation_advice():
    model = nn.Conv2d(1, 3, 1).eval()
    x = torch.randn(6, 1, 4, 4)
    with pytest.raises(ValueError, match="segmentation mask"):
        input_effects(model, x, column_mask(16).reshape(1, 4, 4), target=torch.zeros(6, 4, 4, dtype=torch.long),
                      output=lambda out: out.mean((2, 3)))


class CensusNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.occupation = nn.Embedding(6, 3)
        self.out = nn.Linear(5, 2)

    def forward(self, x):
        return self.out(torch.cat([x[:, :2], self.occupation(x[:, 2].long())], 1))


def test_noise_sigma_zero_beside_codes_is_measured_as_given():
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(32, 2, generator=g), torch.randint(0, 6, (32, 1), generator=g).float()], 1)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = CaptumBaseline(("Saliency",), noise_sigma=0.0).run(CensusNet().eval(), Probe(x))
    assert any("stability" in key for key in result.scalars)
    assert not any("only category codes" in note for note in result.meta.get("notes", []))
