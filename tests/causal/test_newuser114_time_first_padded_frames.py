"""A CTC acoustic model returning log-probabilities time first, ``[T, N, C]`` (newuser114's trial): an ``output=``
that reads a frame past a sample's length (``out[t]``), or that sums over every frame (``out.logsumexp(0)``, a token's
presence) of a model whose padded frames move with the real ones, explains frames the ``lengths`` mark as padding.
Laid out batch first, ``[N, T, C]``, both were warned about; time first, neither was. A mean or a ``logsumexp`` over
every frame of a packed model, whose padded frames hold one output, was warned about in neither layout: each sample's
effects then depend on the padding it is given."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects

N, T, FEATS, CLASSES = 4, 10, 3, 4
LENGTHS = torch.tensor([10, 6, 10, 4])


class CTCNet(nn.Module):
    """A GRU over ``[N, T, F]`` frames; log-probabilities ``[T, N, C]`` (or ``[N, T, C]``), packed by ``lengths`` or
    not (then the padded frames' outputs follow the real frames before them)."""

    def __init__(self, *, time_first: bool, pack: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.gru = nn.GRU(FEATS, 5, batch_first=True)
        self.out = nn.Linear(5, CLASSES)
        self.time_first, self.pack = time_first, pack

    def forward(self, x, lengths):
        if self.pack:
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            h = nn.utils.rnn.pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=x.shape[1])[0]
        else:
            h = self.gru(x)[0]
        lp = self.out(h).log_softmax(-1)
        return lp.transpose(0, 1) if self.time_first else lp


def _probe():
    x = torch.randn(N, T, FEATS, generator=torch.Generator().manual_seed(1))
    return x * (torch.arange(T) < LENGTHS[:, None])[..., None]


def _warnings(model, output):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        effects = input_effects(model.eval(), _probe(), torch.arange(FEATS).reshape(1, 1, FEATS), target=1,
                                output=output, additional_forward_args={"lengths": LENGTHS})
    return effects, [str(w.message) for w in caught if "padding" in str(w.message)]


@pytest.mark.parametrize("pack", [True, False], ids=["packed", "unpacked"])
def test_a_time_first_frame_past_a_length_is_warned_as_the_batch_first_one(pack):
    t = 7  # padding in samples 1 and 3
    _, first = _warnings(CTCNet(time_first=True, pack=pack), lambda out: out[t])
    _, second = _warnings(CTCNet(time_first=False, pack=pack), lambda out: out[:, t])
    assert len(second) == 1 and "probe sample(s) [1, 3]" in second[0]
    assert first == second


def test_a_time_first_frame_real_in_every_sample_is_not_warned():
    _, said = _warnings(CTCNet(time_first=True, pack=False), lambda out: out[3])
    assert said == []


def test_a_time_first_sum_over_moving_padded_frames_is_warned():
    _, first = _warnings(CTCNet(time_first=True, pack=False), lambda out: out.logsumexp(0))
    _, second = _warnings(CTCNet(time_first=False, pack=False), lambda out: out.logsumexp(1))
    assert len(second) == 1 and "moves with the model's outputs at the positions" in second[0]
    assert first == second


def test_a_sum_over_constant_padded_frames_is_not_warned():
    """Packed: every padded frame's output is the one bias, moved by no real frame, so a sum over every frame leaves it
    out of every difference."""
    effects, said = _warnings(CTCNet(time_first=True, pack=True), lambda out: out.sum(0))
    assert said == []
    assert effects.abs().sum() > 0


@pytest.mark.parametrize("time_first", [True, False], ids=["time_first", "batch_first"])
@pytest.mark.parametrize("reduce", ["logsumexp", "mean"])
def test_a_mean_or_logsumexp_over_constant_padded_frames_is_warned(time_first, reduce):
    """A token's presence, ``out.logsumexp(0)``, or a mean over every frame, of a packed model: the padded frames hold
    one output, which moves with nothing, yet each sample's effects depend on how many of them it is given."""
    dim = 0 if time_first else 1
    output = (lambda out: out.logsumexp(dim)) if reduce == "logsumexp" else (lambda out: out.mean(dim))
    model = CTCNet(time_first=time_first, pack=True).eval()
    effects, said = _warnings(model, output)
    assert len(said) == 1 and "probe sample(s) [1, 3]" in said[0] and "shrink with the padding" in said[0]
    # the fact warned about: the same utterances padded to 4 frames more give other effects
    x, fm = torch.nn.functional.pad(_probe(), (0, 0, 0, 4)), torch.arange(FEATS).reshape(1, 1, FEATS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        longer = input_effects(model, x, fm, target=1, output=output, additional_forward_args={"lengths": LENGTHS})
    assert not torch.allclose(longer, effects, rtol=1e-3, atol=1e-6)


class ChannelsFirstCTC(CTCNet):
    """The same network over frames laid out channels first, ``[N, F, T]`` as ``Conv1d`` takes them."""

    def forward(self, x, lengths):
        return super().forward(x.transpose(1, 2), lengths)


@pytest.mark.parametrize("time_first", [True, False], ids=["time_first", "batch_first"])
def test_frames_laid_out_channels_first_are_checked_as_batch_first_ones(time_first):
    """``[N, F, T]`` inputs padded along their last axis: a frame past a length (``out[t]``) and a mean over every frame
    are warned about as of ``[N, T, F]`` inputs; a frame real in every sample and a sum over every frame are not."""
    model = ChannelsFirstCTC(time_first=time_first, pack=True).eval()
    x, fm = _probe().transpose(1, 2), torch.arange(FEATS).reshape(1, FEATS, 1)
    dim = 0 if time_first else 1

    def said(output):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            input_effects(model, x, fm, target=1, output=output, additional_forward_args={"lengths": LENGTHS})
        return [str(w.message) for w in caught if "padding" in str(w.message)]

    at_frame = said(lambda out: out.select(dim, 7))
    assert len(at_frame) == 1 and "probe sample(s) [1, 3]" in at_frame[0]
    mean = said(lambda out: out.mean(dim))
    assert len(mean) == 1 and "shrink with the padding" in mean[0]
    assert said(lambda out: out.select(dim, 3)) == [] and said(lambda out: out.sum(dim)) == []
