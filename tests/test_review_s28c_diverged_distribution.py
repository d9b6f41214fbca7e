"""Review of newuser51's 869ad2b6: the refusal of a distribution's moment that is NaN everywhere (torch's
``Categorical.mean``, a ``Cauchy``'s mean) also refused a diverged model's ``Normal`` (its ``loc`` NaN, built under
``validate_args=False``), telling the user "torch defines none" and to explain ``output='loc'``, itself NaN. The
package reports a diverged model's NaN effects (engine/finite.py); the refusal now reads the tensors the distribution
is built from and refuses only where those are finite.

Then (869ad2b6 and 2383ad09): a Cauchy returned without ``output=`` was told "e.g. `output='mean'` (the predictive
mean); its uncertainty: `output='variance'`, `output='stddev'`" (a NaN, refused at once, and two infinities, explained
as NaN effects), held in a mapping `out['d'].mean` (NaN effects, no refusal on a callable). The messages leave out what
is nowhere finite and name the tensors it is built from; a moment infinite everywhere is refused as a NaN one is."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn
from torch.distributions import Categorical, Normal

from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.output_selection import select_output

X = torch.tensor([[1.0, 2.0], [-1.0, 0.5], [0.5, -1.0]], dtype=torch.float64)


class Diverged(nn.Module):
    """``Normal(w . x, 1)`` whose weight went NaN in training; ``kind="tensor"`` returns ``w . x`` itself."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.w = nn.Parameter(torch.tensor([float("nan"), 1.0], dtype=torch.float64))

    def forward(self, x):
        loc = x @ self.w
        return loc.unsqueeze(1) if self.kind == "tensor" else Normal(loc, torch.ones_like(loc), validate_args=False)


def test_a_diverged_normals_mean_gives_the_nan_effects_a_tensor_model_gives():
    got = input_effects(Diverged("normal"), X, output="mean")  # before: ValueError "torch defines none"
    as_tensor = input_effects(Diverged("tensor"), X)
    assert got.shape == as_tensor.shape == (3, 2)
    assert bool(got.isnan().all()) and bool(as_tensor.isnan().all())


def test_a_categoricals_mean_of_finite_logits_is_still_refused():
    logits = torch.tensor([[0.0, 1.0, 2.0]])
    with pytest.raises(ValueError, match=r"its `mean` is NaN everywhere \(torch defines none"):
        select_output(Categorical(logits=logits), "mean")
    nan_logits = Categorical(logits=torch.full((1, 3), float("nan")), validate_args=False)
    assert bool(select_output(nan_logits, "mean").isnan().all())  # NaN logits: the model's NaN, passed on


class CauchyModel(nn.Module):
    """``Cauchy(w . x, 1)`` with ``w = (2, -1)``, returned as it is or held in a mapping (``held=True``)."""

    def __init__(self, held: bool = False) -> None:
        super().__init__()
        self.held = held
        self.w = nn.Parameter(torch.tensor([2.0, -1.0], dtype=torch.float64))

    def forward(self, x):
        loc = x @ self.w
        dist = torch.distributions.Cauchy(loc, torch.ones_like(loc))
        return {"d": dist} if self.held else dist


def test_a_cauchy_is_told_of_its_location_not_of_its_undefined_mean():
    """Before: "e.g. `output='mean'` (the predictive mean); its uncertainty: `output='variance'`, `output='stddev'`",
    a NaN and two infinities; held in a mapping, `out['d'].mean`, whose NaN effects no refusal caught."""
    with pytest.raises(TypeError) as info:
        input_effects(CauchyModel(), X)
    said = str(info.value)
    assert "`output='loc'`" in said and "output='mean'" not in said and "variance" not in said
    with pytest.raises(TypeError) as info:
        input_effects(CauchyModel(held=True), X)
    read = re.search(r"`output=(lambda out: out\['d'\]\.loc)`", str(info.value))
    assert read is not None and ".mean" not in str(info.value)
    got = input_effects(CauchyModel(held=True), X, output=eval(read.group(1)))  # the read the message names
    torch.testing.assert_close(got, X * torch.tensor([2.0, -1.0], dtype=torch.float64), rtol=0, atol=1e-12)  # w_j x_j


def test_a_cauchys_infinite_variance_is_refused():
    with pytest.raises(ValueError, match=r"its `variance` is infinite or NaN everywhere .*`output='loc'`, `output='scale'`"):
        input_effects(CauchyModel(), X, output="variance")  # before: effects inf - inf, NaN
