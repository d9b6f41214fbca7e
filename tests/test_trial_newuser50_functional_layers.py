"""newuser50 trial: hidden layers computed in functional code (F.linear with the weights of an nn.ParameterList, or
of the model itself) have no module. Naming the parameter told the user to name its holder: for the model's own
weight 'w1', "name the module '' for its output (or ':input' for its input)", and for 'ws.0' the ParameterList
'ws', which never runs (then refused as a module not called, pointing at F.linear(x, m.weight) of a module that
exists). The messages now say that the holder never runs and give the nn.Identity wrap, which docs/your_model.md's
'Layers in functional code' shows; its example (also one call of a block applied 4 times) equals a hand do()."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.causal import Zero, intervene, layer_causal_map, unit_effects

PAGE = Path(__file__).resolve().parents[1] / "docs" / "your_model.md"


class _Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(8, 4))
        self.ws = nn.ParameterList([nn.Parameter(torch.randn(3, 8))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(F.relu(F.linear(x, self.w1)), self.ws[0])


@pytest.mark.parametrize("name, held", [("w1", "held by the model itself"),
                                        ("ws.0", "held by the ParameterList 'ws' (no forward: it never runs)"),
                                        ("ws", "it is a ParameterList, which holds tensors and has no forward"),
                                        ("relu", "The model reads its own parameters and 'ws' in functional code")])
def test_a_name_of_functional_code_is_refused_with_the_identity_wrap(name: str, held: str) -> None:
    with pytest.raises(ValueError) as err:
        unit_effects(_Functional(), torch.randn(4, 4), name, unit_dim=-1)
    message = str(err.value)
    assert held in message
    assert "nn.Identity" in message and "Layers in functional code" in message
    assert "name the module ''" not in message and "':input'" not in message


def test_a_parameter_of_a_layer_that_runs_still_names_the_layer() -> None:
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    with pytest.raises(ValueError, match=r"'0.weight' is a tensor \('weight'\) of module '0'; name the module '0'"):
        unit_effects(model, torch.randn(4, 4), "0.weight")


def test_the_docs_example_gives_the_hand_do_for_the_wrapped_layer_and_for_one_call() -> None:
    code = re.search(r"<!-- functional layers -->\s*```python\n(.*?)```", PAGE.read_text(), re.S).group(1)
    torch.manual_seed(0)
    ns: dict = {}
    exec(compile(code, "<your_model.md functional layers>", "exec"), ns)  # noqa: S102 - the docs' own example
    deep, h = ns["deep"], ns["h"]
    with torch.no_grad():
        out = deep(h)
    t = out.argmax(1, keepdim=True)

    def hand(unit: int, calls: set[int]) -> torch.Tensor:  # do(h_unit := 0) at the given applications of the block
        seen = [0]

        def hook(_m: nn.Module, _i: object, o: torch.Tensor) -> torch.Tensor | None:
            seen[0] += 1
            if seen[0] in calls:
                o = o.clone()
                o[:, unit] = 0
                return o
            return None
        handle = deep.block[1].register_forward_hook(hook)
        with torch.no_grad():
            y = deep(h)
        handle.remove()
        return (out.gather(1, t) - y.gather(1, t))[:, 0]

    second = torch.stack([hand(u, {2}) for u in range(8)], 1)
    every = torch.stack([hand(u, {1, 2, 3, 4}) for u in range(8)], 1)
    assert torch.allclose(ns["second_call"], second, atol=1e-5)
    assert torch.allclose(ns["every_call"], every, atol=1e-5)
    assert not torch.allclose(second, every, atol=1e-3)  # the two readings differ on this model
    # the page's do() by hand through intervene on 'steps.1': unit 3 at the 2nd application
    assert torch.allclose((out.gather(1, t) - ns["y"].gather(1, t))[:, 0], second[:, 3], atol=1e-5)
    x = ns["x"]
    torch.manual_seed(1)
    mlp = ns["FunctionalMLP"]().eval()
    with torch.no_grad():
        f = mlp(x)
        t = f.argmax(1, keepdim=True)
        h1 = F.relu(F.linear(x, mlp.w[0]))
        hand_mlp = torch.stack([(f.gather(1, t) - F.linear(h1 * (torch.arange(8) != u), mlp.w[1]).gather(1, t))[:, 0]
                                for u in range(8)], 1)
    assert torch.allclose(unit_effects(mlp, x, "hidden", unit_dim=-1), hand_mlp, atol=1e-5)
    with intervene(mlp, {"hidden": Zero(units=[2])}), torch.no_grad():
        assert torch.allclose(mlp(x), F.linear(h1 * (torch.arange(8) != 2), mlp.w[1]), atol=1e-6)


def test_the_layer_maps_default_layers_of_a_parameter_list_give_the_identity_wrap() -> None:
    class _Mlp(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.ParameterList([nn.Parameter(torch.randn(8, 4)), nn.Parameter(torch.randn(3, 8))])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.linear(F.relu(F.linear(x, self.w[0])), self.w[1])

    with pytest.raises(ValueError, match=r"\(none of \['w'\] does\); a layer computed in functional code .*nn\.Identity"):
        layer_causal_map(_Mlp(), torch.randn(12, 4))
