"""BackdoorAudit drew its pictures (the trigger, triggered inputs, the reversed masks, patterns and triggers) for
images ``[N, C, H, W]`` only: a video model's clips ``[N, C, T, H, W]`` got none. They are drawn at one frame now,
where the trigger (or the reversed masks) is largest, the middle one where every frame holds as much, named in a note
on the card."""

import torch
from torch import nn

from lightning_causal import BackdoorAudit
from lightning_causal.audits import Probe
from lightning_causal.causal import Trigger


class _Clips(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.head = nn.Conv3d(3, 4, 3, padding=1), nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x).relu().mean((2, 3, 4)))


def _clips() -> torch.Tensor:
    return torch.rand(8, 3, 6, 8, 8, generator=torch.Generator().manual_seed(1))


def test_a_known_trigger_on_clips_is_drawn_at_its_largest_frame() -> None:
    mask = torch.zeros(1, 6, 8, 8)
    mask[:, 1, 5:, 5:] = 1.0  # a corner square on frame 1 only
    result = BackdoorAudit(Trigger(mask, 1.0, target=0)).run(_Clips().eval(), Probe(_clips()))
    assert result.images["trigger"].shape == (1, 3, 8, 8) and result.images["triggered_inputs"].shape == (4, 3, 8, 8)
    assert bool((result.images["trigger"][0, :, 5:, 5:] == 1).all()) and float(result.images["trigger"].sum()) == 3 * 9
    torch.testing.assert_close(result.images["triggered_inputs"], Trigger(mask, 1.0, target=0).apply(_clips()[:4])[:, :, 1])
    assert any("frame 1 of the clips' 6" in note and "the trigger's largest" in note for note in result.meta["notes"])


def test_a_trigger_on_every_frame_is_drawn_at_the_middle_one() -> None:
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :2, :2] = 1.0
    result = BackdoorAudit(Trigger(mask, 0.0, target=1)).run(_Clips().eval(), Probe(_clips()))
    torch.testing.assert_close(result.images["triggered_inputs"], Trigger(mask, 0.0, target=1).apply(_clips()[:4])[:, :, 3])
    assert any("frame 3 of the clips' 6" in note and "the middle one" in note for note in result.meta["notes"])


def test_reversed_triggers_of_clips_are_drawn_one_frame_per_class() -> None:
    result = BackdoorAudit(steps=5, max_samples=8).run(_Clips().eval(), Probe(_clips()))
    for name in ("reversed_masks", "reversed_patterns", "reversed_triggers"):
        assert result.images[name].dim() == 4 and result.images[name].shape[0] == 3 and result.images[name].shape[-2:] == (8, 8)
    assert any("each class's reversed trigger is drawn at the frame" in note for note in result.meta["notes"])


def test_the_figures_name_the_frame() -> None:
    from lightning_causal.reporting.tensorboard import TensorBoardRenderer

    mask = torch.zeros(1, 6, 8, 8)
    mask[:, 4, :3, :3] = 1.0
    result = BackdoorAudit(Trigger(mask, 1.0, target=0)).run(_Clips().eval(), Probe(_clips()))
    figures = TensorBoardRenderer().figures([result], _clips())
    titles = {tag: fig._suptitle.get_text() if fig._suptitle else fig.axes[0].get_title() for tag, fig in figures.items()
              if "/images/" in tag}
    assert titles and all("at frame 4 of 6" in title.replace("\n", " ") for title in titles.values()), titles


def test_a_black_trigger_is_drawn_at_the_frame_it_stamps() -> None:
    """Review of 0091b2bd: the frame was chosen by |mask * pattern|, which a black patch (pattern 0) holds nowhere: its
    pictures showed the middle frame, where no trigger is, with a note that the trigger's frames were alike. The mask
    says where the stamp acts."""
    mask = torch.zeros(1, 6, 8, 8)
    mask[:, 5, 5:, 5:] = 1.0  # a black corner square on the last frame only
    clips = _clips() * 0.8 + 0.1  # no pixel is black already
    result = BackdoorAudit(Trigger(mask, 0.0, target=0)).run(_Clips().eval(), Probe(clips))
    assert result.meta["image_frame"] == "frame 5 of 6"
    assert bool((result.images["triggered_inputs"][:, :, 5:, 5:] == 0).all())  # the black square is in the picture
    assert any("frame 5 of the clips' 6" in note and "the trigger's largest" in note for note in result.meta["notes"])


def test_masks_reversed_shared_by_every_frame_name_the_clips_frames() -> None:
    """Review of 0091b2bd: masks reversed with channel_dim=2 (one mask for every frame, [K, C, 1, H, W]) were read as
    clips of one frame: the titles said 'frame 0 of 1' of clips of 6 frames."""
    result = BackdoorAudit(steps=3, max_samples=8, reverse_options={"channel_dim": 2}).run(_Clips().eval(), Probe(_clips()))
    assert result.meta["image_frame"] == "frame 3 of 6"
    assert any("frame 3 of the clips' 6" in note and "the middle one" in note for note in result.meta["notes"])
    assert all(result.images[name].shape == (3, 3, 8, 8) for name in ("reversed_masks", "reversed_patterns", "reversed_triggers"))
