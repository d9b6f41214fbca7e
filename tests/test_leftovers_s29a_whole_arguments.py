"""A tensor forward argument that the probe passes whole (a weight matrix for a functional layer, its first dimension
not the probe's N) was read as per-sample once a subset of the probe had as many samples as it has rows: Captum's
sensitivity repeats each of the probe's 4 samples 4 times, and CaptumBaseline's sensitivity_max with a weight of 16
rows stopped with a message about graph networks (the weight gathered by row); a dry run's 2 samples likewise gathered
a weight of 2 rows. Probe.subset now hands on its probe's decision (forward_args.mark_whole), which ForwardArgs,
and through it the engine and CaptumForward, reads."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.audits import CaptumBaseline, CompareSettings
from lightning_causal.audits.base import Probe
from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.forward_args import ForwardArgs


class _Functional(nn.Module):
    """``tanh(x W^T)`` summed over pairs of units: the weight ``W [16, 5]`` (or ``[2, 5]``) comes as a forward argument."""

    def forward(self, x, w):
        return torch.tanh(F.linear(x, w)).reshape(x.shape[0], -1, 2).sum(-1)


class _Bound(nn.Module):
    """The same model with its weight held: the hand call ``model(x, w)``."""

    def __init__(self, w):
        super().__init__()
        self.w = w

    def forward(self, x):
        return _Functional()(x, self.w)


def _data(rows: int = 16):
    g = torch.Generator().manual_seed(0)
    return torch.randn(4, 5, generator=g), torch.randn(rows, 5, generator=g)


def test_captums_sensitivity_with_a_weight_of_k_n_rows_is_that_of_the_hand_call():
    x, w = _data()
    settings = CompareSettings(reference_metrics=True, n_perturb_samples=4)  # 4 x 4 rows: the weight's 16
    given = CaptumBaseline(methods=("Saliency",), settings=settings).run(_Functional(), Probe(x, additional_forward_args=(w,)))
    hand = CaptumBaseline(methods=("Saliency",), settings=settings).run(_Bound(w), Probe(x))
    assert given.scalars == hand.scalars
    assert "sensitivity_max" in given.scalars and "compare/Saliency/sensitivity_max" in given.scalars


@pytest.mark.parametrize("rows", [torch.arange(16) // 4, slice(0, 2)], ids=["repeats", "dry run"])
def test_a_subsets_forward_arguments_keep_the_weight_whole(rows):
    x, w = _data(16 if isinstance(rows, torch.Tensor) else 2)
    sub = Probe(x, additional_forward_args=(w,)).subset(rows)
    assert len(sub) == w.shape[0]
    fargs = ForwardArgs(sub.additional_forward_args, len(sub))
    assert fargs.tensors() == [] and fargs.take(torch.tensor([1, 0]))[0][0] is w
    effects = input_effects(_Functional(), sub.first, **sub.forward_options)
    assert torch.equal(effects, input_effects(_Bound(w), sub.first))
    moved = sub.to("cpu")  # a copy of the subset keeps the marks
    assert ForwardArgs(moved.additional_forward_args, len(moved)).tensors() == []


def test_a_per_sample_argument_still_follows_its_rows_in_a_subset():
    x, w = _data()
    scale = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    probe = Probe(x, additional_forward_args={"w": w, "scale": scale})
    sub = probe.subset(torch.tensor([3, 3, 0]))
    assert torch.equal(sub.additional_forward_args["scale"], scale[[3, 3, 0]]) and sub.additional_forward_args["w"] is w
