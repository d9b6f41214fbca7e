"""newuser82 trial (neural ODEs, weight-tied blocks): Captum's LayerIntegratedGradients on a module that runs several
times per forward pass. Its hook puts the interpolated values of the module's last call in place of the output of every
call, so on a block applied to its own output (an ODE function at every solver stage) it integrated another model, one
whose every call returns the last call's value: its attributions summed to that model's change (0.044 where
f(x) - f(0) is 0.281 on newuser82's RK4 neural ODE), under a warning that said it 'reads its last call only'."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import CaptumBaseline, audit_model
from lightning_causal.audits import CompareSettings, Probe
from lightning_causal.baselines import layer_attribute


class _Tied(nn.Module):
    """A weight-tied block applied three times to its own output (a fixed-step ODE solver's stages alike)."""

    def __init__(self, same_input: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.enc, self.block, self.head = nn.Linear(3, 4), nn.Linear(4, 4), nn.Linear(4, 2)
        self.same_input = same_input

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = torch.tanh(self.enc(x))
        if self.same_input:  # the block applied twice to the same tensor: both calls return one value
            return self.head(torch.tanh(self.block(u)) + self.block(u))
        z = u
        for _ in range(3):
            z = z + 0.5 * torch.tanh(self.block(z))
        return self.head(z)


def _x() -> torch.Tensor:
    return torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


def _all_calls_set_to_last(model: _Tied, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """The model Captum's hook integrates: every call of the block returns its last call's value on input ``z``."""
    seen: list[torch.Tensor] = []
    handle = model.block.register_forward_hook(lambda _m, _i, out: seen.append(out))
    with torch.no_grad():
        model(z)
    handle.remove()
    handle = model.block.register_forward_hook(lambda _m, _i, _out: seen[-1])
    with torch.no_grad():
        out = model(x)
    handle.remove()
    return out


def test_layer_integrated_gradients_on_a_block_applied_to_its_own_output_is_refused() -> None:
    model, x = _Tied().double().eval(), _x()
    # what it answered before: the change of the model whose calls all return the last call's value, not f(x) - f(0)
    mangled = (_all_calls_set_to_last(model, x, x) - _all_calls_set_to_last(model, x, torch.zeros_like(x)))[:, 0]
    with torch.no_grad():
        true = (model(x) - model(torch.zeros_like(x)))[:, 0]
    assert (mangled - true).abs().max() > 0.05  # the two differ: the refused answer was no explanation of the model
    with pytest.raises(ValueError, match=r"Expected layer 'block' to run once per forward pass for Captum's "
                                         r"LayerIntegratedGradients, but it runs 3 times and its calls return different values"):
        layer_attribute(model, x, "block", "LayerIntegratedGradients", target=0)
    # the methods that read the last call without replacing the others still run, with their warning
    for method in ("LayerConductance", "LayerGradientXActivation", "LayerActivation"):
        with pytest.warns(UserWarning, match=rf"'block' runs 3 times per forward pass; {method} reads its last call"):
            layer_attribute(model, x, "block", method, target=0)


def test_calls_returning_one_value_keep_layer_integrated_gradients_complete() -> None:
    model, x = _Tied(same_input=True).double().eval(), _x()
    with pytest.warns(UserWarning, match=r"'block' runs 2 times per forward pass; LayerIntegratedGradients"):
        got = layer_attribute(model, x, "block", "LayerIntegratedGradients", target=0, options={"n_steps": 64})
    with torch.no_grad():
        true = (model(x) - model(torch.zeros_like(x)))[:, 0]
    torch.testing.assert_close(got.sum(1), true, atol=1e-6, rtol=0)  # completeness: both calls take the path's value


def test_captum_baseline_with_layer_integrated_gradients_on_a_repeated_block_is_refused_before_it_runs() -> None:
    model, x = _Tied().double().eval(), _x()
    audit = CaptumBaseline(methods=("Saliency",), layers=["block"],
                           settings=CompareSettings(layer_method="LayerIntegratedGradients"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"runs 3 times and its calls return different values"):
            audit_model(model, [audit], Probe(x), probe_size=6)


class _ReadBothWays(nn.Module):
    """One embedding read on the ids and again on them reversed: two calls of other values at the input layer."""

    def __init__(self, again: str = "flip") -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.a, self.b = nn.Embedding(10, 4), nn.Linear(20, 2), nn.Linear(20, 2)
        self.again = again

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        other = ids.flip(1) if self.again == "flip" else ids
        return self.a(torch.tanh(self.emb(ids)).flatten(1)) + self.b(self.emb(other).flatten(1) ** 2)


def test_input_layer_methods_on_an_embedding_read_twice_on_other_ids_are_refused() -> None:
    from lightning_causal.baselines import input_layer_attribute

    ids = torch.randint(1, 10, (3, 5), generator=torch.Generator().manual_seed(1))
    model = _ReadBothWays().double().eval()
    # before: LayerIntegratedGradients summed to 0.910 where f(x) - f(pad) is 0.806 (sample 0), each position given
    # the last call's, the reversed sequence's, attribution
    for method in ("LayerIntegratedGradients", "LayerFeatureAblation", "LayerGradientXActivation"):
        with pytest.raises(ValueError, match=rf"Expected input layer 'emb' to run once per forward pass for Captum's "
                                             rf"{method}, but it runs 2 times and its calls return different values"):
            input_layer_attribute(model, ids, "emb", method, target=0)
    # the same ids read twice: both calls take the values Captum puts in, so the attributions stay complete
    same = _ReadBothWays(again="same").double().eval()
    with pytest.warns(UserWarning, match=r"'emb' runs 2 times per forward pass; LayerIntegratedGradients"):
        got = input_layer_attribute(same, ids, "emb", "LayerIntegratedGradients", target=0, options={"n_steps": 64})
    with torch.no_grad():
        true = (same(ids) - same(torch.zeros_like(ids)))[:, 0]
    torch.testing.assert_close(got.sum(1), true, atol=1e-6, rtol=0)
