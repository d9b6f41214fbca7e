"""Review of newuser114's padded-read checks (padded_reads._scaled_by_padding, _step_padding).

A half-precision model whose padded frames hold one output, explained by a sum over every frame, was warned about as a
mean: its float16/bfloat16 sum over every frame rounds otherwise than over the real frames alone. And the padding of
frames laid out channels first was read twice per check (a long probe's scan, tens of ms, at every explained target)."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects
from lightning_causal.causal.engine import ablation
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.padded_reads import LENGTHS_MIXED_FIX, _step_padding


class MaskedFrames(nn.Module):
    """Per-frame log-probabilities ``[N, T, C]`` of frames ``[N, T, F]``, the padded frames' outputs zeroed."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.lin = nn.Linear(4, 6)

    def forward(self, x, lengths):
        real = (torch.arange(x.shape[1], device=x.device) < lengths[:, None])[..., None]
        return (5 * self.lin(x)).log_softmax(-1) * real


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_a_half_precision_sum_over_every_frame_is_not_read_as_a_mean(dtype):
    lengths = torch.tensor([48, 20, 33, 9, 48, 41])
    x = torch.randn(6, 48, 4, generator=torch.Generator().manual_seed(0))
    x = (x * (torch.arange(48) < lengths[:, None])[..., None]).to(dtype)
    model = MaskedFrames().to(dtype).eval()

    def said(output):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            input_effects(model, x, torch.arange(4).reshape(1, 1, 4), target=0, output=output,
                          additional_forward_args={"lengths": lengths})
        return [str(w.message) for w in caught if "shrink with the padding" in str(w.message)]

    assert said(lambda out: out.sum(1)) == []
    assert said(lambda out: out.exp().sum(1)) == []
    mean = said(lambda out: out.mean(1))  # still told: each sample's effects scaled by its padding
    assert len(mean) == 1 and "probe sample(s) [1, 2, 3, 5]" in mean[0]


def test_the_padding_of_channels_first_frames_is_scanned_once(monkeypatch):
    lengths = torch.tensor([30, 12, 25])
    x = torch.randn(3, 5, 30) * (torch.arange(30) < lengths[:, None])[:, None]
    forward = Forward(nn.Identity(), output=lambda o: o, additional_forward_args={"lengths": lengths}, num_samples=3)
    scans = []
    real = ablation._filled_after
    monkeypatch.setattr(ablation, "_filled_after", lambda *a: scans.append(a[2]) or real(*a))
    ablation.input_padding((x,), {"lengths": lengths})
    once = list(scans)
    scans.clear()
    pad, _, axis, way = _step_padding(forward, (x,))
    assert way == LENGTHS_MIXED_FIX  # the padding counted by `lengths`: the way out of a mean over every frame
    assert axis == 2 and pad.tolist() == (torch.arange(30) >= lengths[:, None]).tolist()
    assert scans == once and len(once) >= 1


@pytest.mark.parametrize("time_first", [False, True], ids=["batch_first", "time_first"])
def test_a_frame_read_among_padded_frames_of_one_output_is_named_alone(time_first):
    """The padded frames all hold 0 (``MaskedFrames``): ``out[t]`` equals every one of them, the last among them, and
    was named a read of the last position, with the tokenizer's left padding as the way out."""
    lengths = torch.tensor([12, 5, 12, 7])
    x = torch.randn(4, 12, 4, generator=torch.Generator().manual_seed(2)) * (torch.arange(12) < lengths[:, None])[..., None]
    base = MaskedFrames().eval()

    class Laid(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = base

        def forward(self, x, lengths):
            out = self.net(x, lengths)
            return out.transpose(0, 1) if time_first else out

    def said(t):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            input_effects(Laid().eval(), x, torch.arange(4).reshape(1, 1, 4), target=0,
                          output=(lambda o: o[t]) if time_first else (lambda o: o[:, t]),
                          additional_forward_args={"lengths": lengths})
        return [str(w.message) for w in caught if "mark as padding" in str(w.message)]

    frame = said(8)
    assert len(frame) == 1 and "probe sample(s) [1, 3] is the model's output at position(s) [8]," in frame[0]
    assert "padding_side" not in frame[0] and "past a shorter sample's length" in frame[0]
    last = said(11)
    assert len(last) == 1 and "position(s) [11]," in last[0] and "padding_side" in last[0]


def test_telling_tied_positions_apart_leaves_a_float64_output_as_it_was():
    from lightning_causal.causal.engine.padded_reads import _untied

    out = torch.zeros(2, 4, 3, dtype=torch.float64)
    pad = torch.tensor([[False, False, True, True], [False] * 4])
    told = _untied(Forward(nn.Identity(), output=lambda o: o[:, 2], num_samples=2), out, {0: [2, 3]}, pad)
    assert told == {0: [2]} and bool((out == 0).all())


def test_a_mean_over_frames_counted_by_lengths_is_told_the_way_with_lengths():
    """MIXED_FIX names an attention mask and dimension 1; frames counted by ``lengths``, log-probabilities time first,
    are told the way with ``lengths`` too, whose expressions reduce over each sample's real frames."""
    import re

    from lightning_causal.causal.engine.padded_reads import LENGTHS_MIXED_FIX

    lengths = torch.tensor([10, 4, 7])
    x = torch.randn(3, 10, 4, generator=torch.Generator().manual_seed(4)) * (torch.arange(10) < lengths[:, None])[..., None]

    def said(model, output, args):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            input_effects(model.eval(), x, torch.arange(4).reshape(1, 1, 4), target=0, output=output,
                          additional_forward_args=args)
        return [str(w.message) for w in caught if "shrink with the padding" in str(w.message)]

    (message,) = said(MaskedFrames(), lambda out: out.mean(1), {"lengths": lengths})
    assert LENGTHS_MIXED_FIX in message

    class Masked(MaskedFrames):
        def forward(self, x, attention_mask):
            return super().forward(x, attention_mask.sum(1))

    (masked,) = said(Masked(), lambda out: out.mean(1), {"attention_mask": (torch.arange(10) < lengths[:, None]).long()})
    assert "With `lengths`" not in masked
    # the expressions as written: each sample's mean and logsumexp over its real frames, batch first and time first
    code = [c for c in re.findall(r"`([^`]+)`", LENGTHS_MIXED_FIX) if "real" in c]
    assert len(code) == 5
    out, T = torch.randn(3, 10, 6, dtype=torch.float64), 10
    scope = {"torch": torch, "lengths": lengths, "T": T}
    exec(code[0], scope)
    mean = torch.stack([out[n, : int(k)].mean(0) for n, k in enumerate(lengths)])
    lse = torch.stack([out[n, : int(k)].logsumexp(0) for n, k in enumerate(lengths)])
    got = [eval(c, {**scope, "out": o}) for c, o in zip(code[1:], (out, out, out.transpose(0, 1), out.transpose(0, 1)))]
    for value, want in zip(got, (mean, lse, mean, lse)):
        assert torch.allclose(value, want)
