"""Second look at the review of f1f2ae0b (8a7e4bfd, a1868d6d): ``lengths`` read along an axis other than dimension 1.

(1) A video laid out for ``Conv3d``, ``[N, C, T, H, W]``, with the clips' ``lengths`` (frames): dimension 1 (3 colour
channels) is shorter than the longest length, so since f1f2ae0b the last dimension was read as time, and the columns at
and after each clip's length were taken for padding in every frame, their effects 0 and never set, full clips too
(before f1f2ae0b dimension 1's 3 steps were read: no padding). The frames axis (dimension 2) is now read: the later axis
whose padding holds one value after every length, else the one as long as the longest length. (2) Channels-first frames
``[N, 64 bins, 100]`` beside the token ids of a transcript whose ``lengths`` are given: the frames, read along dimension
1 and 3-D, beat the ids, and the bins at and above each transcript's length were taken for padding (as before f1f2ae0b).
A metadata table wider than the ids, and a context longer than the query whose steps the lengths count, were chosen
likewise (the longer). Beside token ids or a sequence whose padding holds one value (a pad id, zeros),
a tensor whose padding holds no one value now comes after them.
"""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.ablation import (
    input_padding,
    padding_positions,
    step_positions,
    time_axis,
)


def _hand(model: nn.Module, x: torch.Tensor, mask: torch.Tensor, groups: int, args: dict) -> torch.Tensor:
    """Each group set to 0 in turn, target 0: the clean logit less the intervened one, by hand."""
    with torch.no_grad():
        clean = model(x, **args)[:, 0]
        return torch.stack([clean - model(torch.where(mask == g, 0.0, x), **args)[:, 0] for g in range(groups)], 1)


class _Video(nn.Module):
    """A ``Conv3d`` over ``[N, 3, T, H, W]`` reading ``lengths`` frames -> 3 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        real = (torch.arange(x.shape[2])[None] < lengths[:, None]).float().view(x.shape[0], 1, -1, 1, 1)
        return self.head((self.conv(x * real).relu() * real).sum((2, 3, 4)) / lengths[:, None])


def test_a_video_laid_out_for_conv3d_is_padded_along_its_frames():
    torch.manual_seed(0)
    model = _Video().eval()
    lengths = torch.tensor([8, 6, 4, 2])
    x = torch.randn(4, 3, 8, 12, 12).masked_fill(~(torch.arange(8)[None] < lengths[:, None]).view(4, 1, 8, 1, 1), 0.0)
    pad = padding_positions(x, {"lengths": lengths})
    assert pad.shape == (4, 1, 8, 1, 1) and pad.flatten(1).sum(1).tolist() == [0, 2, 4, 6]  # was [4, 1, 1, 1, 12]
    assert step_positions(pad) is None  # the hidden states of a Conv3d do not keep the frames on dimension 1
    cols = (torch.arange(12) // 3).view(1, 1, 1, 1, 12).expand(1, 3, 8, 12, 12)  # four column strips
    effects = input_effects(model, x, cols, target=0, additional_forward_args={"lengths": lengths})
    assert torch.allclose(effects, _hand(model, x, cols, 4, {"lengths": lengths}), atol=1e-5)
    assert bool((effects != 0).all())  # was 0 for the strips past a short clip's length (9 of 16 wrong)
    frames = (torch.arange(8) // 2).view(1, 1, 8, 1, 1).expand(1, 3, 8, 12, 12)  # four pairs of frames
    effects = input_effects(model, x, frames, target=0, additional_forward_args={"lengths": lengths})
    assert effects[3, 1:].abs().max() == 0 and effects[1, :3].abs().min() > 0  # the 2-frame clip's later pairs: padding
    # full clips, and the frames of 32 longer than the frames' height and width: the frames still
    full = torch.randn(4, 3, 8, 12, 12)
    assert time_axis(full, torch.full((4,), 8)) == 2 and time_axis(torch.randn(2, 3, 32, 16, 16), torch.tensor([32, 9])) == 2
    effects = input_effects(model, full, cols, target=0, additional_forward_args={"lengths": torch.full((4,), 8)})
    assert torch.allclose(effects, _hand(model, full, cols, 4, {"lengths": torch.full((4,), 8)}), atol=1e-5)
    # laid out batch first, [N, T, C, H, W], dimension 1 as before
    assert time_axis(x.transpose(1, 2).contiguous(), lengths) == 1 and time_axis(full.transpose(1, 2), torch.full((4,), 8)) == 1


class _SpeechText(nn.Module):
    """Frames ``[N, 64, T]`` through a ``Conv1d`` and a transcript's ids ``[N, S]``, ``lengths`` tokens long -> 3."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(64, 8, 3, padding=1)
        self.emb = nn.Embedding(30, 8)
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        real = (torch.arange(ids.shape[1])[None] < lengths[:, None]).float()
        text = (self.emb(ids) * real[..., None]).sum(1) / lengths[:, None]
        return self.head(torch.cat([self.conv(x).relu().mean(-1), text], 1))


def test_frames_beside_the_transcript_ids_the_lengths_count_keep_every_bin():
    torch.manual_seed(1)
    model = _SpeechText().eval()
    lengths = torch.tensor([20, 12, 6, 3])
    ids = torch.randint(1, 30, (4, 20)).masked_fill(torch.arange(20)[None] >= lengths[:, None], 0)
    x = torch.randn(4, 64, 100)
    args = {"ids": ids, "lengths": lengths}
    assert padding_positions(x, args, model=model) is None  # was the bins at and above each transcript's length
    pads = input_padding((x, ids), {"lengths": lengths})
    assert pads[0] is None and pads[1].sum(1).tolist() == [0, 8, 14, 17]
    bands = (torch.arange(64) // 16).view(1, 64, 1)
    effects = input_effects(model, x, bands, target=0, additional_forward_args=args)
    assert torch.allclose(effects, _hand(model, x, bands, 4, args), atol=1e-6)  # 15 of 16 read 0 before


class _TableText(nn.Module):
    """A metadata table ``[N, 12]`` and token ids ``[N, 10]``, ``lengths`` tokens long -> 3 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(30, 4)
        self.table = nn.Linear(12, 4)
        self.head = nn.Linear(8, 3)

    def forward(self, table: torch.Tensor, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        real = (torch.arange(ids.shape[1])[None] < lengths[:, None]).float()
        text = (self.emb(ids) * real[..., None]).sum(1) / lengths[:, None]
        return self.head(torch.cat([self.table(table).tanh(), text], 1))


def test_a_table_wider_than_the_token_ids_the_lengths_count_keeps_every_column():
    """A table of 12 columns beside ids of 10 tokens: the longer, it was chosen, and its columns at and after each
    text's length were padding (16 of 36 effects 0 where the hand loop moves the logit; as before f1f2ae0b). A
    zero-padded batch-first sequence beside ids padded alike still takes the lengths (3-D first, as before)."""
    torch.manual_seed(2)
    model = _TableText().eval()
    lengths = torch.tensor([10, 7, 3])
    ids = torch.randint(1, 30, (3, 10)).masked_fill(torch.arange(10)[None] >= lengths[:, None], 0)
    table = torch.randn(3, 12)
    args = {"ids": ids, "lengths": lengths}
    assert padding_positions(table, args, model=model) is None
    columns = torch.arange(12).view(1, 12)
    effects = input_effects(model, table, columns, target=0, additional_forward_args=args)
    assert torch.allclose(effects, _hand(model, table, columns, 12, args), atol=1e-6)
    seq = torch.randn(3, 10, 64).masked_fill(torch.arange(10)[None, :, None] >= lengths[:, None, None], 0.0)
    pads = input_padding((seq, ids), {"lengths": lengths})
    assert pads[1] is None and pads[0][..., 0].sum(1).tolist() == [0, 3, 7]
    assert padding_positions(seq, {"mask": ids}) is None and padding_positions(seq, None) is None  # no lengths: none


class _ContextQuery(nn.Module):
    """A context ``[N, 16, 8]`` read whole and a query ``[N, 10, 8]`` read for ``lengths`` steps -> 3 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.context = nn.Linear(8, 4)
        self.query = nn.Linear(8, 4)
        self.head = nn.Linear(8, 3)

    def forward(self, ctx: torch.Tensor, query: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        real = (torch.arange(query.shape[1])[None] < lengths[:, None]).float()[..., None]
        q = (self.query(query).tanh() * real).sum(1) / lengths[:, None]
        return self.head(torch.cat([self.context(ctx).tanh().mean(1), q], 1))


def test_a_longer_context_beside_the_zero_padded_query_the_lengths_count_keeps_every_step():
    """Two sequences, the lengths counting the query's steps: the context, the longer, was chosen and its steps at and
    after each query's length were padding (12 of 16 effects wrong; as before f1f2ae0b)."""
    torch.manual_seed(3)
    model = _ContextQuery().eval()
    lengths = torch.tensor([10, 7, 3, 5])
    query = torch.randn(4, 10, 8).masked_fill(torch.arange(10)[None, :, None] >= lengths[:, None, None], 0.0)
    ctx = torch.randn(4, 16, 8)
    args = {"query": query, "lengths": lengths}
    assert padding_positions(ctx, args, model=model) is None
    assert input_padding((query, ctx), {"lengths": lengths})[0][..., 0].sum(1).tolist() == [0, 3, 7, 5]
    windows = (torch.arange(16) // 4).view(1, 16, 1)
    effects = input_effects(model, ctx, windows, target=0, additional_forward_args=args)
    assert torch.allclose(effects, _hand(model, ctx, windows, 4, args), atol=1e-6)


class _TimeMel(nn.Module):
    """A ``Conv2d`` over log-mel frames laid out ``[N, 1, T, n_mels]`` (as PANNs take them) reading ``lengths`` frames."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        real = (torch.arange(x.shape[2])[None] < lengths[:, None]).float().view(x.shape[0], 1, -1, 1)
        return self.head((self.conv(x * real).relu() * real).sum((2, 3)) / lengths[:, None])


def test_frames_laid_out_time_then_mel_bins_are_padded_along_time():
    """``[N, 1, 20 frames, 32 bins]``: dimension 1 is shorter than the longest length and the bins hold it too, so the
    last dimension was read as time, the bins at and above each clip's length padding (full clips too); the frames now."""
    torch.manual_seed(4)
    model = _TimeMel().eval()
    lengths = torch.tensor([20, 14, 6, 20])
    x = torch.randn(4, 1, 20, 32).masked_fill(torch.arange(20).view(1, 1, 20, 1) >= lengths.view(4, 1, 1, 1), 0.0)
    assert padding_positions(x, {"lengths": lengths}).shape == (4, 1, 20, 1)  # was (4, 1, 1, 32)
    assert time_axis(torch.randn(4, 1, 20, 32), torch.full((4,), 20)) == 2  # full clips: was 3
    bands = (torch.arange(32) // 8).view(1, 1, 1, 32)
    effects = input_effects(model, x, bands, target=0, additional_forward_args={"lengths": lengths})
    assert torch.allclose(effects, _hand(model, x, bands, 4, {"lengths": lengths}), atol=1e-5)
