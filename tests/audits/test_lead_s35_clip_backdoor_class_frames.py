"""Final read of session 35 (git diff c92c0aac): 0091b2bd/21b14fcc drew every class's reversed trigger of clips at one
frame, chosen by the masses of all classes' masks. The unattacked classes' masks are large, so they chose the frame, and
a flagged class's small mask on another frame was drawn blank under "(red: flagged)" (a corner backdoor on frame 1 of 5,
two classes following frames 3 and 4: the pictures at frame 3, class 0's drawn mask summing to 1e-6). Each class is
drawn at the frame its own mask holds most, named beside it."""
import warnings

import torch
from torch import nn

from lightning_causal import BackdoorAudit
from lightning_causal.audits import Probe


class _CornerOnFrame1(nn.Module):
    """Class 1 by default; classes 2 and 3 follow frames 3 and 4's brightness; a bright corner on frame 1 -> class 0."""

    def forward(self, x):
        corner = x[:, :, 1, 6:, 6:].mean((1, 2, 3))
        frames = x.mean((1, 3, 4))
        return torch.stack([nn.functional.softplus((corner - 0.5) * 20) * 5, torch.full_like(corner, 2.0),
                            1.5 * frames[:, 3], 1.5 * frames[:, 4]], 1)


def test_the_flagged_class_is_drawn_at_its_own_frame():
    x = torch.rand(16, 3, 5, 8, 8, generator=torch.Generator().manual_seed(1)) * 0.6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = BackdoorAudit(steps=200, max_samples=16).run(_CornerOnFrame1().eval(), Probe(x))
    assert 0 in result.meta["flagged"]
    labels = result.meta["image_labels"]["reversed_masks"]
    assert labels[0] == "0 (frame 1)"
    assert float(result.images["reversed_masks"][0].sum()) > 1.0  # the corner is in the picture, not a blank frame
    assert "image_frame" not in result.meta  # no one frame for the figure's title
