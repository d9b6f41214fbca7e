"""A weight passed whole as a forward argument beside a probe cut to ``probe_size`` samples, of as many rows as the cut
(``Probe(x of 8, additional_forward_args=(w of 4 rows,))``, ``probe_size=4``: the cut marks it whole, 85c6b00a), and
holding NaN (a diverged weight): the probe's finiteness check (finite.per_sample_tensors) read it by its row count as a
per-sample tensor and refused "sample [2] of 4 holds NaN (in additional_forward_args[0])", a sample that holds none,
where the same probe at ``probe_size=8`` is audited and its NaN effects reported (a diverged model is reported, not
refused). The check reads the marks as every pass does; a per-sample tensor holding NaN is still refused."""

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_causal import audit_model
from lightning_causal.audits import InputEffectAudit
from lightning_causal.audits.base import Probe
from lightning_causal.causal.engine.finite import per_sample_tensors


class _Net(nn.Module):
    """``tanh(x W^T) * scale`` summed over pairs of units: ``W [4, 5]`` and the per-sample ``scale [N, 1]`` come as
    forward arguments."""

    def __init__(self) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.zeros(2))

    def forward(self, x, w, scale=None):
        h = torch.tanh(F.linear(x, w)) * (1.0 if scale is None else scale)
        return h.reshape(x.shape[0], -1, 2).sum(-1) + self.p


def _data():
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(8, 5, generator=g), torch.randn(4, 5, generator=g)
    return x, torch.tensor([0, 1] * 4), w


@pytest.mark.parametrize("probe_size", [8, 4])
def test_a_diverged_weight_passed_whole_is_audited_whatever_the_cut(probe_size):
    x, y, w = _data()
    w[2, 1] = float("nan")  # unit 2 is NaN for every sample: every output 1 is NaN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = audit_model(_Net(), InputEffectAudit(), Probe(x, y, (w,)), probe_size=probe_size)[0]
    assert math.isnan(float(result.scalars["mean_abs_effect"]))  # reported, as at probe_size=8


def test_the_marked_weight_is_no_sample_tensor_but_a_per_sample_one_is():
    x, y, w = _data()
    scale = torch.ones(8, 1)
    cut = Probe(x, y, (w, scale)).subset(slice(0, 4))
    assert [name for name, _ in per_sample_tensors(cut.additional_forward_args, 4)] == ["additional_forward_args[1]"]


def test_a_per_sample_argument_holding_nan_is_still_refused():
    x, y, w = _data()
    scale = torch.ones(8, 1)
    scale[2] = float("nan")
    with warnings.catch_warnings(), pytest.raises(MisconfigurationException,
                                                  match=r"sample \[2\] of 4 holds NaN .*additional_forward_args\[1\]"):
        warnings.simplefilter("ignore")
        audit_model(_Net(), InputEffectAudit(), Probe(x, y, (w, scale)), probe_size=4)
