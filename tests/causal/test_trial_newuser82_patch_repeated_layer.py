"""newuser82 trial (a weight-tied block, a neural ODE's function at every solver stage): ``unit_effects`` with
``Patch(source)`` on a module that runs several times per forward pass set every call to the one source row of its
sample (``capture`` keeps the last call's), without a word: not activation patching of the paired run, whose calls
each have their own value. It is refused now, naming the number of calls and the ways out."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import Patch, capture, unit_effects


class _Iterated(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.block, self.last, self.head = nn.Linear(3, 3), nn.Identity(), nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(3):
            x = x + torch.tanh(self.block(x))
        return self.head(self.last(x))


def _pair() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(4, 3, dtype=torch.float64, generator=g), torch.randn(4, 3, dtype=torch.float64, generator=g)


def _patched_by_hand(model: _Iterated, clean: torch.Tensor, corrupt: torch.Tensor, unit: int) -> torch.Tensor:
    """Activation patching of ``block``'s unit: each call takes its own value on the clean input."""
    seen: list[torch.Tensor] = []
    handle = model.block.register_forward_hook(lambda _m, _i, out: seen.append(out.detach()))
    with torch.no_grad():
        model(clean)
    handle.remove()
    calls = iter(seen)

    def patch(_m: nn.Module, _i: object, out: torch.Tensor) -> torch.Tensor:
        out = out.clone()
        out[:, unit] = next(calls)[:, unit]
        return out

    handle = model.block.register_forward_hook(patch)
    try:
        with torch.no_grad():
            return model(corrupt)
    finally:
        handle.remove()


def test_patch_on_a_module_run_three_times_per_pass_is_refused() -> None:
    model, (clean, corrupt) = _Iterated().double().eval(), _pair()
    with pytest.warns(UserWarning, match="capture keeps its last call's output"), capture(model, ["block"]) as acts:
        model(clean)
    # what it answered before: every call set to the last call's clean value, against patching each call by hand
    with torch.no_grad():
        out = model(corrupt)
        target = out.argmax(1, keepdim=True)
        before = torch.stack([(out - _patched_last_everywhere(model, acts["block"], corrupt, u)).gather(1, target)[:, 0]
                              for u in range(3)], 1)
        patched = torch.stack([(out - _patched_by_hand(model, clean, corrupt, u)).gather(1, target)[:, 0] for u in range(3)], 1)
    assert (before - patched).abs().max() > 0.05
    with pytest.raises(ValueError, match=r"Expected layer 'block' to run once per forward pass for Patch, but it runs 3 "
                                         r"times .* Name one call with an nn.Identity"):
        unit_effects(model, corrupt, "block", Patch(acts["block"]))


def _patched_last_everywhere(model: _Iterated, source: torch.Tensor, corrupt: torch.Tensor, unit: int) -> torch.Tensor:
    def patch(_m: nn.Module, _i: object, out: torch.Tensor) -> torch.Tensor:
        out = out.clone()
        out[:, unit] = source[:, unit]
        return out

    handle = model.block.register_forward_hook(patch)
    try:
        return model(corrupt)
    finally:
        handle.remove()


def test_patch_on_a_module_run_once_is_activation_patching() -> None:
    model, (clean, corrupt) = _Iterated().double().eval(), _pair()
    with capture(model, ["last"]) as acts:
        model(clean)
    got = unit_effects(model, corrupt, "last", Patch(acts["last"]), target=0)
    with torch.no_grad():
        out = model(corrupt)
        for u in range(3):
            h = model.last.register_forward_hook(lambda _m, _i, o, u=u: torch.cat(
                [o[:, :u], acts["last"][:, u:u + 1], o[:, u + 1:]], 1))
            want = out[:, 0] - model(corrupt)[:, 0]
            h.remove()
            torch.testing.assert_close(got[:, u], want, atol=1e-12, rtol=0)
