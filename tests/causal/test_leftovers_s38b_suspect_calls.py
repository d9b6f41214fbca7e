"""suspect_units on a layer that runs several times a forward pass (a GRU cell unrolled over time, a backbone run on
each view of a test-time-augmentation wrapper) kept every call's whole output, for the clean and the triggered pass:
200 calls, 200 times the memory of one. Each call is now reduced to its units' means as it arrives, with the scores
of before; a layer that does not run is refused without capture's warning before the error."""

import gc
import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal.backdoor.suspects import suspect_units
from lightning_causal.causal.backdoor.triggers import Trigger
from lightning_causal.causal.effects.unit_effects import unit_effects
from lightning_causal.causal.engine.interventions import capture
from lightning_causal.causal.engine.state import audit_mode
from lightning_causal.causal.engine.unit_interventions import SetTo


class Unrolled(nn.Module):
    """A GRU cell unrolled over ``steps`` time steps (its input's positions read in turn)."""

    def __init__(self, steps: int, hidden: int = 6) -> None:
        super().__init__()
        self.cell, self.head, self.steps, self.hidden = nn.GRUCell(4, hidden), nn.Linear(hidden, 3), steps, hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.new_zeros(x.shape[0], self.hidden)
        for t in range(self.steps):
            h = self.cell(x[:, t % x.shape[1]], h)
        return self.head(h)


def _trigger() -> Trigger:
    return Trigger(torch.zeros(3, 4).index_fill_(1, torch.tensor([0]), 1.0), torch.full((3, 4), 2.0), target=1)


def _reference(model: nn.Module, x: torch.Tensor, trigger: Trigger, layer: str, num_values: int) -> torch.Tensor:
    """The scores as suspect_units computed them before: every call's output kept, each call's means stacked."""
    def means(xs: torch.Tensor) -> torch.Tensor:
        calls = []
        with audit_mode(model), capture(model, [layer], keep=lambda _, h: calls.append(h.clone()) or h, warn_repeats=False):
            model(xs)
        return torch.stack([h.mean(0) for h in calls]).mean(0)

    x_trig = trigger.apply(x)
    lo, hi = means(x), means(x_trig)
    grid = [SetTo(lo + (hi - lo) * a) for a in torch.linspace(0, 1, num_values).tolist()]
    return unit_effects(model, x_trig, layer, grid, target=trigger.target).mean(0)


@pytest.mark.parametrize("steps", [1, 3, 12])
def test_scores_on_a_layer_of_several_calls_are_those_of_every_call_kept(steps):
    torch.manual_seed(0)
    model, x = Unrolled(steps), torch.randn(10, 3, 4)
    su = suspect_units(model, x, _trigger(), "cell", num_values=4)
    ref = _reference(model, x, _trigger(), "cell", 4)
    if steps < 8:  # a sum of fewer than 8 calls is added in order either way: the very floats
        assert torch.equal(su.score, ref)
    torch.testing.assert_close(su.score, ref, rtol=1e-6, atol=1e-7)


def _live_bytes() -> int:
    """The bytes of the CPU tensors alive (plain tensors: no parameter, no fake tensor another test left), each storage once."""
    storages = {}
    with warnings.catch_warnings():  # isinstance on gc's objects touches deprecated module attributes
        warnings.simplefilter("ignore")
        for o in gc.get_objects():
            if type(o) is torch.Tensor and o.device.type == "cpu" and o.layout == torch.strided:
                storage = o.untyped_storage()
                storages[storage.data_ptr()] = storage.nbytes()
    return sum(storages.values())


def _kept_bytes(model: nn.Module, run) -> int:
    """The most bytes of tensors alive at the head's input in the first three passes of ``run``: the target check,
    the clean and the triggered pass, where the clean pass's calls are all kept if any are."""
    seen: list[int] = []

    def count(*_):
        if len(seen) < 3:
            gc.collect()
            seen.append(_live_bytes())

    handle = model.head.register_forward_pre_hook(count)
    try:
        run()
    finally:
        handle.remove()
    return max(seen)


def test_the_memory_kept_does_not_grow_with_the_number_of_calls():
    torch.manual_seed(0)
    x = torch.randn(64, 3, 4)
    kept = {steps: _kept_bytes(m := Unrolled(steps, hidden=32),
                               lambda m=m: suspect_units(m, x, _trigger(), "cell", num_values=2)) for steps in (2, 50)}
    one_call = 2 * x.shape[0] * 32 * 4  # the clean and the triggered output of one call, float32
    assert kept[50] - kept[2] < one_call, kept  # before: 48 more calls kept of each pass, 48 x one_call more


def test_a_layer_that_does_not_run_is_refused_without_a_warning_of_capture():
    model = Unrolled(1)
    model.unused = nn.Linear(6, 6)  # held, never called
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # before: "Module 'unused' did not run ..., so capture on it had no effect"
        with pytest.raises(ValueError, match=r"layer 'unused' to run in the model's forward pass but it did not"):
            suspect_units(model, torch.randn(6, 3, 4), _trigger(), "unused")
