"""A CTC speech model (newuser75's trial): log-probabilities laid out time first, ``[T, N, C]``, as ``F.ctc_loss``
takes them, and targets concatenated as ``F.ctc_loss`` also takes them. Refusals that name the layout and the way that
works, never the fixes for ``[N, T, C]`` (``out.mean(1)``, ``out.view(-1, T, C)``), which read the steps as samples or
mix them; and the way that works equals a hand "set, rerun, difference" loop."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lightning_causal.causal import input_effects

N, T, FEATS, CLASSES = 4, 9, 5, 4


class TimeMajorCTC(nn.Module):
    """A recurrent acoustic model returning log-probabilities [T, N, C] (blank = class 0)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.gru = nn.GRU(FEATS, 6)  # batch_first=False: [T, N, F]
        self.out = nn.Linear(6, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [N, T, F]
        h, _ = self.gru(x.transpose(0, 1))
        return self.out(h).log_softmax(-1)


class CTCScore(nn.Module):
    """The CTC log-likelihood of each sample's own transcript, the targets and lengths as forward arguments."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x, targets, target_lengths):
        lp = self.net(x)
        frames = torch.full((x.shape[0],), lp.shape[0], dtype=torch.long)
        return -F.ctc_loss(lp, targets, frames, target_lengths, reduction="none")


def _data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(N, T, FEATS, generator=g)
    target_lengths = torch.tensor([2, 3, 1, 2])
    targets = torch.randint(1, CLASSES, (N, 3), generator=g)
    return x, targets, target_lengths


@pytest.mark.parametrize("output", [None, lambda out: out.mean(1), lambda out: out.view(-1, T, CLASSES).mean(1)],
                         ids=["none", "mean1", "view"])
def test_time_major_output_refused_naming_the_layout(output):
    x, _, _ = _data()
    kwargs = {} if output is None else {"output": output}
    with pytest.raises(ValueError, match=r"time steps first, \[T, N, C\]") as err:
        input_effects(TimeMajorCTC().eval(), x, target=1, **kwargs)
    assert "out[t]" in str(err.value) and "F.ctc_loss" in str(err.value)


def test_time_major_refused_where_the_steps_equal_the_samples():
    """A probe of as many samples as steps: the [T, N, C] output has N rows, and the check of two samples tells."""
    x = torch.randn(T, T, FEATS, generator=torch.Generator().manual_seed(2))
    with pytest.raises(ValueError, match=r"time steps first"):
        input_effects(TimeMajorCTC().eval(), x, target=1, output=lambda out: out.mean(1))


def test_a_step_of_a_time_major_output_equals_a_hand_loop():
    x, _, _ = _data()
    model, t, k = TimeMajorCTC().eval(), 4, 2
    mask = torch.arange(T).reshape(1, T, 1).expand(1, T, FEATS)  # one group per frame
    got = input_effects(model, x, mask, target=k, output=lambda out: out[t])
    with torch.no_grad():
        clean = model(x)[t, :, k]
        want = torch.stack([clean - model(x.index_fill(1, torch.tensor([f]), 0.0))[t, :, k] for f in range(T)], 1)
    torch.testing.assert_close(got, want)
    assert got[:, : t + 1].abs().min() > 0  # a unidirectional GRU: frames up to t have an effect, later ones none
    torch.testing.assert_close(got[:, t + 1:], torch.zeros(N, T - t - 1))


@pytest.mark.parametrize("many_classes", [False, True], ids=["ids_below_n", "ids_above_n"])
def test_concatenated_ctc_targets_refused_naming_padded_targets(many_classes):
    x, targets, target_lengths = _data()
    flat = torch.cat([targets[i, : target_lengths[i]] for i in range(N)])
    if many_classes:
        flat = flat + 10  # token ids beyond the number of samples (no indices of samples)
    model = CTCScore(TimeMajorCTC()).eval()
    if many_classes:
        model.net.out = nn.Linear(6, 14)
    with pytest.raises(ValueError, match=r"'targets' \(integer, shape \[8\]\): the labels of every sample concatenated"):
        input_effects(model, x, target=0, additional_forward_args={"targets": flat, "target_lengths": target_lengths})


def test_padded_ctc_targets_equal_a_hand_loop():
    x, targets, target_lengths = _data()
    model = CTCScore(TimeMajorCTC()).eval()
    mask = torch.arange(T).reshape(1, T, 1).expand(1, T, FEATS)
    got = input_effects(model, x, mask, target=0, additional_forward_args={"targets": targets, "target_lengths": target_lengths},
                        max_batch_size=5)
    with torch.no_grad():
        clean = model(x, targets, target_lengths)
        want = torch.stack([clean - model(x.index_fill(1, torch.tensor([f]), 0.0), targets, target_lengths)
                            for f in range(T)], 1)
    torch.testing.assert_close(got, want)


class ReadsEveryFrame(nn.Module):
    """A model that reads its padded frames too (no packing), so that setting them would show an effect."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(FEATS, CLASSES)

    def forward(self, x, input_lengths):
        return self.lin(x).mean(1)


@pytest.mark.parametrize("positional", [False, True], ids=["keyword", "positional"])
def test_input_lengths_is_read_as_lengths(positional):
    """F.ctc_loss names the frame counts `input_lengths`: they mark the padding as `lengths` does (padded frames are
    never set: no effect), where before they reached the model only and the padded frames were set and counted."""
    x, _, _ = _data()
    lengths = torch.tensor([9, 5, 3, 7])
    mask = torch.arange(T).reshape(1, T, 1).expand(1, T, FEATS)
    args = (lengths,) if positional else {"input_lengths": lengths}
    got = input_effects(ReadsEveryFrame().eval(), x, mask, target=1, additional_forward_args=args)
    padded = torch.arange(T) >= lengths[:, None]
    assert bool((got[padded] == 0).all()) and bool((got[~padded] != 0).all())
