"""Review of the TorchScript refusal: an eager model holding a TorchScript submodule (a scripted
backbone) and eager layers after it. Intervening on an eager layer crashed with torch's
'register_forward_hook is not supported on ScriptModules' (inspect_site hooked every module), and the
layer map's default layers picked a layer inside the scripted part, which the refusal then named.
Both now work on the eager layers, with the values of a brute-force do() loop in float64."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from lightning_causal.causal import layer_causal_map, unit_effects

X = torch.randn(9, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def _models() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    eager = nn.Sequential(nn.Sequential(nn.Linear(4, 6), nn.ReLU()), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2)).double().eval()
    return eager, nn.Sequential(torch.jit.script(eager[0]), eager[1], eager[2], eager[3]).eval()


def test_unit_effects_of_an_eager_layer_beside_a_scripted_submodule_match_brute_force() -> None:
    eager, model = _models()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = unit_effects(model, X, "1", target=0)
    with torch.no_grad():
        clean = eager(X)[:, 0]
        want = []
        for u in range(5):  # do(unit u of layer "1" := 0), a plain forward hook
            handle = eager[1].register_forward_hook(lambda _m, _i, out, u=u: out.index_fill(1, torch.tensor([u]), 0.0))
            want.append(clean - eager(X)[:, 0])
            handle.remove()
    assert torch.allclose(got, torch.stack(want, 1), atol=1e-12, rtol=0)


def test_the_default_layers_of_the_map_leave_out_the_scripted_part() -> None:
    _, model = _models()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = layer_causal_map(model, X)
    assert result.layers == ["1", "3"]


def test_full_passes_and_the_hook_split_beside_a_scripted_submodule_match_brute_force() -> None:
    """use_suffix=False (full passes) crashed in the hook split's call recording, which hooked the scripted
    submodule too; the recording now passes it by."""
    eager, model = _models()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        auto = unit_effects(model, X, "1", target=0)
        full = unit_effects(model, X, "1", target=0, use_suffix=False)
    assert torch.allclose(full, auto, atol=1e-12, rtol=0)
