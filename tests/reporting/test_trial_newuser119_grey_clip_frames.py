"""newuser119 trial: grey clips ``[N, T, H, W]`` (a temporal shift network or a frame-wise 2-D CNN folds their frames
into the batch, ``x.flatten(0, 1).unsqueeze(1)``) under ``figure_kind="frames"`` were left undrawn with a warning that
named only the shape the kind draws, ``[N, C, T, H, W]``, and no way there. It now names grey clips and the wrapper
that takes ``[N, 1, T, H, W]``; followed, the frames are drawn, each map at its own frame."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit, Probe
from lightning_causal.reporting.figure_kinds import skip_reason
from lightning_causal.reporting.tensorboard import TensorBoardRenderer


class FoldedGreyClips(nn.Module):
    """Grey clips [N, T, H, W], their frames folded into the batch for a 2-D convolution; the logits read frame 3 only."""

    def __init__(self, frames: int = 6) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1)
        nn.init.ones_(self.conv.weight), nn.init.zeros_(self.conv.bias)
        self.register_buffer("frame_weight", torch.eye(frames)[3])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t = x.shape[:2]
        h = self.conv(x.flatten(0, 1).unsqueeze(1)).mean((2, 3)).view(n, t, 2)  # [N·T, 2, H, W] -> [N, T, 2]
        return (h * self.frame_weight[:, None]).sum(1) * torch.tensor([1.0, -1.0])


class Unsqueezed(nn.Module):
    """The way out the warning names: takes [N, 1, T, H, W]."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.squeeze(1))


def _drawn(model: nn.Module, x: torch.Tensor, mask: torch.Tensor) -> tuple[dict, list[str]]:
    result = InputEffectAudit(feature_mask=mask, ace_values=None).run(model, Probe(x, torch.zeros(len(x), dtype=torch.long)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        figs = TensorBoardRenderer(figure_kind="frames", max_samples=1).figures([result], x)
    return figs, [str(w.message) for w in caught]


def test_grey_clips_under_frames_name_the_wrapper_that_draws_them():
    reason = skip_reason("frames", torch.zeros(2, 6, 5, 5))
    assert reason.startswith("figure kind 'frames' draws inputs [N, C, T, H, W] but the probe's inputs have shape [2, 6, 5, 5]")
    assert "grey clips [N, T, H, W]" in reason and "model(x.squeeze(1))" in reason  # was: the shape alone
    assert "unpack_batch=lambda b: (b[0].unsqueeze(1), b[1], None)" in reason
    assert skip_reason("frames", torch.zeros(2, 1, 6, 5, 5)) is None
    assert "grey clips" not in skip_reason("frames", torch.zeros(2, 6, 5))  # 3-D: no clip


def test_the_way_out_draws_each_frame_with_its_own_effect():
    x = torch.rand(3, 6, 5, 5, generator=torch.Generator().manual_seed(0)) + 0.5
    model = FoldedGreyClips()
    figs, notes = _drawn(model, x, torch.arange(6).reshape(1, 6, 1, 1))
    assert figs == {} and any("grey clips [N, T, H, W]" in n for n in notes)  # not drawn, the way named
    figs, notes = _drawn(Unsqueezed(model), x.unsqueeze(1), torch.arange(6).reshape(1, 1, 6, 1, 1))
    assert not [n for n in notes if "frames" in n], notes
    fig = figs["causal/input_effect/maps/sample_0"]
    assert [fig.axes[t].get_title() for t in range(6)] == [f"t={t}" for t in range(6)]
    result = InputEffectAudit(feature_mask=torch.arange(6).reshape(1, 1, 6, 1, 1), ace_values=None).run(
        Unsqueezed(model), Probe(x.unsqueeze(1), torch.zeros(3, dtype=torch.long)))
    effect = result.maps["effect"][0, 0]  # [T, H, W]: frame 3 alone moves the logit
    assert torch.equal(effect[[0, 1, 2, 4, 5]], torch.zeros(5, 5, 5))
    assert torch.allclose(effect[3], x[0, 3].mean().expand(5, 5), rtol=1e-5)  # zeroing frame 3 removes its mean, the logit
