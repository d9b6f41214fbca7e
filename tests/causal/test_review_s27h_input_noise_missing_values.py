"""The stability noise of a probe holding a missing value (NaN), read by a model that takes NaN as missing.

``element_sd`` took each element's standard deviation over all the samples, so one NaN made its column's noise NaN:
``baselines.metrics.stability`` gave NaN for every sample, and ``CaptumBaseline`` (which runs such a model: its
finite-output check lets a model that reads NaN as missing through) stopped with "Expected argument `sigma` to be
non-negative ... but got tensor([[0.0892, nan, 0.0879]])", of a ``sigma`` the user never gave. The spread of each
element is now taken over its finite values.
"""

import math
import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import CaptumBaseline
from lightning_causal.audits.base import Probe
from lightning_causal.baselines import metrics as M
from lightning_causal.causal.engine.input_noise import element_sd, varies

_NAN = float("nan")
# column 0: 0, 2, 4, 6 (sd sqrt(20 / 3)); column 1: 1, NaN, 3, 5 (its finite values 1, 3, 5: sd 2)
_X = torch.tensor([[0.0, 1.0], [2.0, _NAN], [4.0, 3.0], [6.0, 5.0]], dtype=torch.float64)


def test_a_missing_value_is_left_out_of_its_elements_spread():
    torch.testing.assert_close(element_sd(_X), torch.tensor([[math.sqrt(20 / 3), 2.0]], dtype=torch.float64))
    one = element_sd(torch.tensor([[1.0, _NAN], [2.0, 7.0]], dtype=torch.float64))[0].tolist()
    assert one[0] == pytest.approx(math.sqrt(0.5), rel=1e-15) and one[1] == 0.0  # one finite value: 0 (the sd's last bit is the CPU's reduction)
    assert not varies(torch.tensor([[_NAN, 1.0], [_NAN, 1.0]]))  # NaN != NaN, yet nothing to scale a noise by


def test_stability_noise_of_a_probe_with_a_missing_value_is_of_each_columns_finite_spread():
    seen = []

    def explain(z):
        seen.append(z.clone())
        return torch.nan_to_num(z) * torch.tensor([1.0, -1.0], dtype=z.dtype) + torch.tensor([0.0, 10.0], dtype=z.dtype)

    rho = M.stability(explain, _X, noise_fraction=0.1, seed=3)
    eps = torch.randn(_X.shape, generator=torch.Generator().manual_seed(3), dtype=_X.dtype)
    expected = _X + 0.1 * torch.tensor([[math.sqrt(20 / 3), 2.0]], dtype=torch.float64) * eps
    torch.testing.assert_close(seen[1], expected, equal_nan=True)  # before: column 1 NaN in every sample
    assert torch.isfinite(seen[1]).sum() == 7 and torch.isfinite(rho).all()  # the imputing explanation: every rho


def test_captum_baseline_measures_the_stability_of_a_model_that_reads_nan_as_missing():
    class Imputing(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 3)

        def forward(self, x):
            return self.lin(torch.nan_to_num(x))

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = CaptumBaseline(("Saliency",)).run(Imputing().double(), Probe(_X))  # before: ValueError naming `sigma`
    assert r.scalars["compare/Saliency/stability"] == 1.0  # a linear model's gradient does not move with the noise
    assert math.isfinite(r.scalars["stability"])


def test_stability_of_integer_inputs_is_refused_as_such_not_as_one_sample():
    """Integer inputs (token ids, codes) take no Gaussian noise: the refusal said the varied [8, 3] ids did not vary
    '(one sample?)' (6fb06740's check of the spread), or, given ``sigma``, torch's 'normal_kernel_cpu not implemented
    for Long'; it names the dtype and ``token_stability`` now."""
    ids = torch.arange(24).view(8, 3) % 5
    for kw in ({}, {"sigma": 0.1}):
        with pytest.raises(TypeError, match=r"`inputs` to be floating point .* but got torch.int64; .*token_stability"):
            M.stability(lambda z: z.float(), ids, **kw)
