"""Lead (session 37), final read of 6ab93ab5: the renderer's ``probe_unobserved`` and ``probe_times`` are checked.

Through the public drawing API a mask given as it is (``attention_mask``, 1 = observed) hatched every observed entry
(sample 0, fully observed, came out fully hatched under "hatched: not observed"), a ``[N, T]`` mask of ``[N, T, C]``
inputs was dropped (nothing hatched), and time stamps ``[T]`` were dropped: each drew another picture in silence.
"""

import pytest
import torch

from lightning_causal.audits.base import AuditResult
from lightning_causal.reporting.map_data import check_marks
from lightning_causal.reporting.tensorboard import TensorBoardRenderer
from tests.helpers.writers import RecordingWriter


def _result(x: torch.Tensor) -> AuditResult:
    return AuditResult("input_effects", maps={"causal": torch.randn(x.shape, generator=torch.Generator().manual_seed(0))})


def test_a_mask_given_as_it_is_is_refused_before_anything_is_written():
    x = torch.randn(2, 6, 3)
    mask = torch.ones(2, 6, 3)  # attention_mask: 1 = observed
    writer = RecordingWriter()
    with pytest.raises(TypeError, match=r"`probe_unobserved` to be a bool tensor.*attention_mask == 0"):
        TensorBoardRenderer().render(writer, 0, [_result(x)], x, probe_unobserved=mask)
    with pytest.raises(TypeError, match=r"`probe_unobserved`"):
        TensorBoardRenderer().render_figures(writer, [_result(x)], x, step=0, probe_unobserved=mask)
    assert not writer.texts and not writer.layouts


def test_a_mask_of_the_first_dimensions_marks_whole_steps():
    x = torch.randn(2, 6, 3)
    gone = torch.zeros(2, 6, dtype=torch.bool)
    gone[0, 4:] = True
    unobserved, _ = check_marks(x, gone, None)
    assert unobserved.shape == (2, 6, 1) and torch.equal(unobserved.expand_as(x)[0, 4:], torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"`probe_unobserved` of the probe inputs' shape \(2, 6, 3\)"):
        check_marks(x, torch.zeros(2, 5, dtype=torch.bool), None)


def test_time_stamps_must_be_one_per_sample_and_step():
    x = torch.randn(2, 6, 3)
    assert check_marks(x, None, torch.rand(2, 6))[1].shape == (2, 6)
    for times in (torch.rand(6), torch.rand(1, 6), torch.rand(2, 7)):
        with pytest.raises(ValueError, match=r"`probe_times` of shape \[N, T\]"):
            check_marks(x, None, times)
    with pytest.raises(TypeError, match=r"`probe_times` to be a floating tensor"):
        check_marks(x, None, torch.arange(12).view(2, 6))
