"""Re-read of session 44's padded-read checks (padded_reads): the mean-over-frames warning read the padding arguments
once more for its `lengths` advice (``_lengths_way``), now read once by ``_step_padding``; and the three checks that move
the per-position outputs (``_untied``, ``_mixes_padding``, ``_scaled_by_padding``) take them through one view,
``_batch_first_view``, whose writes must land in a time-first output too."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects
from lightning_causal.causal.engine import ablation, padded_reads
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.padded_reads import (
    LENGTHS_MIXED_FIX,
    MIXED_FIX,
    _batch_first_view,
    _mixes_padding,
)
from tests.causal.test_review_newuser114_padded_checks import MaskedFrames


def test_the_lengths_advice_reads_the_padding_arguments_once(monkeypatch):
    lengths = torch.tensor([12, 5, 9, 7])
    x = torch.randn(4, 12, 4, generator=torch.Generator().manual_seed(0)) * (torch.arange(12) < lengths[:, None])[..., None]
    model = MaskedFrames().eval()
    reads = []
    real = ablation.padding_arguments
    counted = lambda *a, **k: reads.append(1) or real(*a, **k)  # noqa: E731
    monkeypatch.setattr(ablation, "padding_arguments", counted)
    monkeypatch.setattr(padded_reads, "padding_arguments", counted)
    forward = Forward(model, output=lambda o: o.mean(1), additional_forward_args={"lengths": lengths}, num_samples=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        padded_reads._padded_read_said(forward, (x,), "input_effects")
    said = [str(w.message) for w in caught if "shrink with the padding" in str(w.message)]
    assert len(said) == 1 and f"{MIXED_FIX}{LENGTHS_MIXED_FIX}" in said[0]
    assert len(reads) == 1  # _step_padding's read serves the advice


@pytest.mark.parametrize("time_first", [False, True], ids=["batch_first", "time_first"])
def test_the_view_writes_into_the_output_either_way(time_first):
    out = torch.arange(24.0).reshape(2, 3, 4)  # [n=2, T=3, 4]
    laid = out.transpose(0, 1).contiguous() if time_first else out.clone()
    pad = torch.tensor([[False, False, True], [False, True, True]])
    view = _batch_first_view(laid, pad)
    assert torch.equal(view, out)
    view[pad] += 100.0
    moved = out.clone()
    moved[pad] += 100.0
    assert torch.equal(laid, moved.transpose(0, 1) if time_first else moved)
    assert _batch_first_view(laid.long(), pad) is None and _batch_first_view((laid,), pad) is None
    # a mean over every position reads the padding, a real position read does not: laid out either way
    mean = Forward(nn.Identity(), output=(lambda o: o.mean(0)) if time_first else (lambda o: o.mean(1)), num_samples=2)
    first = Forward(nn.Identity(), output=(lambda o: o[0]) if time_first else (lambda o: o[:, 0]), num_samples=2)
    assert _mixes_padding(mean, laid, mean.select(laid), pad) == [0, 1]
    assert _mixes_padding(first, laid, first.select(laid), pad) == []


def test_a_padded_mean_is_warned_through_the_estimator_as_before():
    lengths = torch.tensor([12, 5, 9, 7])
    x = torch.randn(4, 12, 4, generator=torch.Generator().manual_seed(1)) * (torch.arange(12) < lengths[:, None])[..., None]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        input_effects(MaskedFrames().eval(), x, torch.arange(4).reshape(1, 1, 4), target=0, output=lambda o: o.mean(1),
                      additional_forward_args={"lengths": lengths})
    said = [str(w.message) for w in caught if "shrink with the padding" in str(w.message)]
    assert len(said) == 1 and LENGTHS_MIXED_FIX in said[0]
