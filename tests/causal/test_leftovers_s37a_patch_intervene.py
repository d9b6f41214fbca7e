"""`intervene(model, {layer: Patch(src)})` on a module run several times per forward pass is refused as `unit_effects`
refuses it (one rule, one message): the source's one row per sample set every call, which is no activation patching of
the paired run where the calls differ (a tied block whose first call reaches the output past its second: 0.225 off
per-call patching). Calls equal on the run explained do not lift the refusal: they need not be equal on the paired run
(`act(y)` beside `act(y.clamp(min=0))` on inputs of positive `y`: 0.230 off)."""

import pytest
import torch
from torch import nn

from lightning_causal import Patch, SetTo, intervene, unit_effects
from lightning_causal.causal import capture
from lightning_causal.causal.engine.unit_interventions import repeated_patch_error


class _Skip(nn.Module):
    """A weight-tied block applied twice, its first call reaching the output past the second."""

    def __init__(self) -> None:
        super().__init__()
        self.inp, self.block, self.head = nn.Linear(3, 4), nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h1 = self.block(torch.tanh(self.inp(x)))
        return self.head(h1 + self.block(torch.tanh(h1)))


class _AlikeHere(nn.Module):
    """One activation applied to `y` and to `y.clamp(min=0)`: equal calls where `y >= 0` only."""

    def __init__(self) -> None:
        super().__init__()
        self.act, self.head = nn.Softplus(), nn.Linear(3, 2)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(y) + 2 * self.act(y.clamp(min=0)))


def _per_call_patching(model: nn.Module, module: nn.Module, clean: torch.Tensor, corrupt: torch.Tensor) -> torch.Tensor:
    """The paired run's activation patching: each call set to its own call's value on the clean inputs."""
    values: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda _m, _i, out: values.append(out.detach().clone()))
    model(clean)
    handle.remove()
    calls = iter(values)
    handle = module.register_forward_hook(lambda _m, _i, _out: next(calls))
    try:
        return model(corrupt).detach()
    finally:
        handle.remove()


def test_intervene_refuses_patch_on_a_module_called_twice_as_unit_effects_does():
    torch.manual_seed(0)
    model = _Skip().eval()
    clean, corrupt = torch.randn(5, 3), torch.randn(5, 3)
    with capture(model, ["block"], warn_repeats=False) as acts:
        model(clean)
    with pytest.raises(ValueError) as intervened, intervene(model, {"block": Patch(acts["block"])}):
        model(corrupt)
    with pytest.raises(ValueError) as estimated:
        unit_effects(model, corrupt, "block", Patch(acts["block"]))
    assert str(intervened.value) == str(estimated.value) == str(repeated_patch_error("block", 2))
    assert "'block'" in str(intervened.value) and "runs 2 times" in str(intervened.value)
    assert "nn.Identity" in str(intervened.value)
    assert not model.block._forward_hooks and not model._forward_hooks and not model._forward_pre_hooks
    # what the refusal stops: every call set to the last call's clean value is not the paired run's patching
    every = _per_call_patching(model, model.block, clean, corrupt)
    last = acts["block"]
    handle = model.block.register_forward_hook(lambda _m, _i, _out: last)
    wrong = model(corrupt).detach()
    handle.remove()
    assert float((wrong - every).abs().max()) > 0.1


def test_intervene_keeps_patch_on_a_module_called_once_and_other_interventions_on_repeated_ones():
    torch.manual_seed(0)
    model = _Skip().eval()
    clean, corrupt = torch.randn(4, 3), torch.randn(4, 3)
    with capture(model, ["inp"]) as acts:
        model(clean)
    with intervene(model, {"inp": Patch(acts["inp"])}):
        patched = model(corrupt)
    torch.testing.assert_close(patched, model(clean))  # the only path from the input: the clean run back
    with intervene(model, {"block": SetTo(0.0)}):
        out = model(corrupt)  # set at every call, as unit_effects sets it: no refusal
    torch.testing.assert_close(out, model.head(torch.zeros(4, 4)).expand_as(out))


def test_calls_equal_on_the_run_explained_do_not_lift_the_refusal():
    torch.manual_seed(0)
    model = _AlikeHere().eval()
    clean, corrupt = torch.randn(5, 3), torch.rand(5, 3)  # corrupted y >= 0: the two calls are equal there only
    with capture(model, ["act"], warn_repeats=False) as acts:
        model(clean)
    handle = model.act.register_forward_hook(lambda _m, _i, _out: acts["act"])
    every_call = model(corrupt).detach()
    handle.remove()
    assert float((every_call - _per_call_patching(model, model.act, clean, corrupt)).abs().max()) > 0.1
    with pytest.raises(ValueError, match=r"Expected layer 'act' to run once per forward pass for Patch, but it runs 2 times"):
        unit_effects(model, corrupt, "act", Patch(acts["act"]))
    with pytest.raises(ValueError, match=r"runs 2 times"), intervene(model, {"act": Patch(acts["act"])}):
        model(corrupt)
