"""newuser72 trial: clips laid out ``[N, T, C, H, W]`` (frames first, as VideoMAE, TimeSformer and a frame-wise CNN
take them) with ``figure_kind="frames"`` were drawn as ``[N, C, T, H, W]`` without a word: 8 RGB frames of a moving
blob showed as 3 "frames" t=0..2, each the strongest of the 8 real frames, a streak with no motion. The renderer now
warns once, naming a wrapper that takes ``[N, C, T, H, W]``; drawn through that wrapper, the frames are the clip's."""

from __future__ import annotations

import warnings

import pytest
import torch

from lightning_causal.audits import AuditResult
from lightning_causal.reporting.tensorboard import TensorBoardRenderer


def _result(x: torch.Tensor) -> AuditResult:
    return AuditResult(audit="input_effect", maps={"causal": x.clone()}, meta={"targets": [0] * x.shape[0]})


def _notes(x: torch.Tensor) -> list[str]:
    renderer = TensorBoardRenderer(figure_kind="frames", max_samples=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        renderer.figures([_result(x)], x)
        renderer.figures([_result(x)], x)  # once per renderer
    return [str(w.message) for w in caught if "figure kind 'frames'" in str(w.message)]


@pytest.mark.parametrize("channels", [1, 3])
def test_frames_first_clips_are_said_to_be_drawn_wrong_with_the_way(channels):
    x = torch.rand(2, 8, channels, 6, 6)  # [N, T=8, C, H, W]
    notes = _notes(x)
    assert len(notes) == 1, notes  # was none
    assert "[N, T, C, H, W]" in notes[0] and "x.transpose(1, 2)" in notes[0] and "unpack_batch" in notes[0]
    assert f"8 channels over {channels} frame" in notes[0]


def test_clips_laid_out_for_conv3d_draw_their_frames_without_a_note():
    x = torch.zeros(1, 3, 8, 6, 6)
    x[0, :, torch.arange(8), 3, torch.arange(8) % 6] = 1.0  # a dot moving right, frame by frame
    assert _notes(x) == []
    fig = TensorBoardRenderer(figure_kind="frames", max_samples=1).figures([_result(x)], x)["causal/input_effect/maps/sample_0"]
    assert [fig.axes[t].get_title() for t in range(8)] == [f"t={t}" for t in range(8)]
    for t in range(8):  # the wrapper's layout: each panel is its frame, the dot where it is at that frame
        drawn = torch.as_tensor(fig.axes[t].get_images()[0].get_array().data)  # RGB [H, W, 3]
        drawn = drawn.sum(-1) if drawn.dim() == 3 else drawn
        assert int(drawn.argmax()) == 3 * 6 + t % 6


def test_a_videos_counterfactual_names_its_frame_under_the_frames_kind():
    """CounterfactualAudit draws a video at its frame of largest change; under ``figure_kind="frames"`` (whose maps say
    ``t=3``) each column said ``depth slice 3``, a volume's word: it says ``frame 3`` now, a volume keeps its own."""
    from lightning_causal.audits import CounterfactualAudit, Probe
    from lightning_causal.causal.structure.counterfactuals import CounterfactualSettings

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6 * 3 * 3, 2, bias=False))
    w = torch.zeros(2, 1, 6, 3, 3)
    w[1, 0, 4, 1, 1] = 1.0  # class 1 reads the middle pixel of frame 4: only there can a change flip the class
    model[1].weight.data.copy_(w.reshape(2, -1))
    x = torch.zeros(2, 1, 6, 3, 3)
    r = CounterfactualAudit(max_samples=2, towards="runner_up", settings=CounterfactualSettings(steps=25, polish=0)).run(model, Probe(x))
    tag = "causal/counterfactual/images/counterfactuals"
    fig = TensorBoardRenderer(figure_kind="frames", max_samples=2).figures([r], x)[tag]
    assert [ax.get_title().split("\n")[-1] for ax in fig.axes[:2]] == ["frame 4"] * 2  # was 'depth slice 4'
    fig = TensorBoardRenderer(max_samples=2).figures([r], x)[tag]
    assert [ax.get_title().split("\n")[-1] for ax in fig.axes[:2]] == ["depth slice 4"] * 2
