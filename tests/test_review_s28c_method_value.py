"""Review of newuser51's 2383ad09: ``output="icdf"`` (or ``"cdf"``, ``"log_prob"``) of a model returning a
``torch.distributions`` object was told "`icdf` is a method that takes `value`, which `output=` cannot give it", then
only the labels as a forward argument; a value shared by every row is a callable's (the median,
``out.icdf(torch.tensor(0.5))``, which the refusal of a Cauchy's mean itself names). The message names that callable;
evaluated as written it explains the Normal's median, its mean ``w . x``: effects ``w_j x_j``."""

from __future__ import annotations

import re

import pytest
import torch

from lightning_causal.causal import input_effects
from tests.test_trial_newuser51_distributions import W_MEAN, Heteroscedastic, X


def test_a_method_that_takes_a_value_is_named_with_a_shared_value():
    with pytest.raises(TypeError) as info:
        input_effects(Heteroscedastic(), X, output="icdf")
    said = str(info.value)
    assert "cannot give it" not in said  # before: "which `output=` cannot give it"
    written = re.search(r"`output=(lambda out: out\.icdf\(torch\.tensor\(0\.5\)\))`", said)
    assert written is not None and "forward(self, x, y=None)" in said  # the labels' way stays named
    got = input_effects(Heteroscedastic(), X, output=eval(written.group(1), {"torch": torch}))
    torch.testing.assert_close(got, X * W_MEAN, rtol=0, atol=1e-12)  # the median of Normal(w . x, s) is w . x
