"""A callable ``output=`` whose value is NaN where a held distribution's moment is undefined is called again by
``select_output`` with that moment made finite (``output_selection._reads_moment``, da8251a8), once per moment and
distribution tried: a callable that draws random numbers (``out["n"].mean + noise``) moved the global generators as
many more times (a model with a diverged Normal beside two Cauchys: 7 calls for one selection), so that what the caller
drew next differed from what it drew after the callable's one call. The generators are now put back after each call
made again."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch.distributions import Cauchy, Normal

from lightning_causal.causal.engine.output_selection import select_output

LOC = torch.tensor([1.0, -2.0, 0.5])


def _out() -> dict:
    """A diverged Normal (its mean NaN, ``validate_args=False``) beside two finite Cauchys (means undefined)."""
    one = torch.ones(3)
    return {"n": Normal(torch.full((3,), float("nan")), one, validate_args=False), "c": Cauchy(LOC, one),
            "b": Cauchy(-LOC, one)}


def _draws() -> tuple[float, float, float]:
    return float(torch.rand(())), float(np.random.rand()), random.random()


def _noisy(read: str):
    def output(out: dict) -> torch.Tensor:
        return out[read].mean + 0.0 * (torch.rand(()) + float(np.random.rand()) + random.random())

    return output


def _seed() -> None:
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)


@pytest.mark.parametrize("read", ["n", "c"])
def test_the_callables_calls_made_again_leave_the_generators_as_its_one_call(read: str) -> None:
    output, out = _noisy(read), _out()
    _seed()
    output(out)
    expected = _draws()
    _seed()
    if read == "n":  # a diverged model's NaN: passed, reported as the model's
        assert bool(select_output(out, output).isnan().all())
    else:  # the Cauchy's undefined mean: refused
        with pytest.raises(ValueError, match="Cauchy's `mean` is undefined"):
            select_output(out, output)
    assert _draws() == expected  # before: other draws (the callable called 7 and 2 times, not once)
