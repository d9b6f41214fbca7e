"""Review of 1db0bfac (newuser75): the frame counts of a speech model go by many names (``F.ctc_loss``'s
``input_lengths``, ESPnet's ``speech_lengths``, icefall's ``x_lens``, ``feat_lens``, ``seq_lens``, or ``<input>_len`` of
forward's own input parameter); one rule (``ablation.lengths_alias``) reads them all as ``lengths``: the padded frames
are never set and get no effect. The counts of another argument (``target_lengths``, ``label_lengths``) are never read
as the input's: read so, real frames past a transcript's length would be taken for padding."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects

N, T, FEATS = 4, 9, 5
FRAMES = torch.tensor([9, 5, 3, 7])  # each utterance's frames
TOKENS = torch.tensor([2, 1, 3, 2])  # each transcript's tokens: fewer than the frames


def _reads_every_frame(*names: str, x: str = "x") -> nn.Module:
    """A model that reads its padded frames too (no packing), forward(<x>, <names>), so that a frame set shows an
    effect."""
    scope: dict = {}
    exec(f"def forward(self, {x}, {', '.join(names)}):\n    return self.lin({x}).mean(1)", scope)  # noqa: S102 - names
    cls = type("ReadsEveryFrame", (nn.Module,), {"forward": scope["forward"]})
    model = cls()
    torch.manual_seed(0)
    model.lin = nn.Linear(FEATS, 3)
    return model.eval()


def _effects(model: nn.Module, args) -> torch.Tensor:
    x = torch.randn(N, T, FEATS, generator=torch.Generator().manual_seed(1))
    mask = torch.arange(T).reshape(1, T, 1).expand(1, T, FEATS)  # one group per frame
    return input_effects(model, x, mask, target=1, additional_forward_args=args)


@pytest.mark.parametrize("name", ["feat_lens", "speech_lengths", "x_lens", "seq_lens", "ilens", "src_lengths"])
@pytest.mark.parametrize("positional", [False, True], ids=["keyword", "positional"])
def test_frame_counts_under_their_usual_names_pad_the_frames(name, positional):
    got = _effects(_reads_every_frame(name), (FRAMES,) if positional else {name: FRAMES})
    padded = torch.arange(T) >= FRAMES[:, None]
    assert bool((got[padded] == 0).all()) and bool((got[~padded] != 0).all())


def test_lengths_named_after_forwards_own_input_pad_the_frames():
    """forward(self, fbank, fbank_len): '<input>_len' of the explained input's own parameter."""
    got = _effects(_reads_every_frame("fbank_len", x="fbank"), (FRAMES,))
    padded = torch.arange(T) >= FRAMES[:, None]
    assert bool((got[padded] == 0).all()) and bool((got[~padded] != 0).all())


@pytest.mark.parametrize("name", ["target_lengths", "label_lengths", "text_lens", "y_lens"])
@pytest.mark.parametrize("positional", [False, True], ids=["keyword", "positional"])
def test_a_transcripts_lengths_never_pad_the_frames(name, positional):
    """Every frame is real (no frame counts given): no frame past a transcript's length may be left unset."""
    got = _effects(_reads_every_frame(name), (TOKENS,) if positional else {name: TOKENS})
    assert bool((got != 0).all())


def test_the_frames_counts_beside_the_targets_counts():
    """forward(x, feat_lens, targets, target_lengths): the frames take feat_lens, not target_lengths."""
    targets = torch.ones(N, 3, dtype=torch.long)
    for args in ((FRAMES, targets, TOKENS), {"target_lengths": TOKENS, "targets": targets, "feat_lens": FRAMES}):
        got = _effects(_reads_every_frame("feat_lens", "targets", "target_lengths"), args)
        padded = torch.arange(T) >= FRAMES[:, None]
        assert bool((got[padded] == 0).all()) and bool((got[~padded] != 0).all())


def test_lengths_itself_comes_before_another_name():
    got = _effects(_reads_every_frame("lengths", "x_lens"), {"x_lens": torch.full((N,), T), "lengths": FRAMES})
    padded = torch.arange(T) >= FRAMES[:, None]
    assert bool((got[padded] == 0).all()) and bool((got[~padded] != 0).all())
