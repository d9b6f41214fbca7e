"""The model-ensembling recipe of ``torch.func``: members' weights stacked (``stack_module_state``)
and run with ``vmap`` over ``functional_call`` on a skeleton moved to the ``meta`` device. Such a
model runs, yet every estimator refused it ("`model` to hold its weights in memory but
'base.0.weight' is on the meta device ... materialise the model first"). A meta tensor is now refused
only where a pass fails on it; a site inside the skeleton is refused naming it (hooks there see
vmapped tensors), and the layer map's default layers leave it out. A model on the meta device
throughout keeps its refusal (tests/causal/test_forward.py)."""

import copy

import pytest
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from lightning_causal.causal import input_effects, layer_causal_map, unit_effects


class _Ensemble(nn.Module):
    def __init__(self, members: int = 3) -> None:
        super().__init__()
        nets = [nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)) for _ in range(members)]
        params, _ = stack_module_state(nets)
        self.names = list(params)
        self.stacked = nn.ParameterDict({n.replace(".", "_"): nn.Parameter(p) for n, p in params.items()})
        self.base = copy.deepcopy(nets[0]).to("meta")
        self.head = nn.Linear(3, 2)

    def forward(self, x):
        params = {n: self.stacked[n.replace(".", "_")] for n in self.names}
        members = vmap(lambda p, xx: functional_call(self.base, p, (xx,)), in_dims=(0, None))(params, x)
        return self.head(torch.tanh(members.mean(0)))


def _model_and_probe() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    return _Ensemble().double().eval(), torch.randn(5, 4, dtype=torch.float64)


def test_input_effects_of_an_ensemble_equal_brute_force():
    model, x = _model_and_probe()
    with torch.no_grad():
        clean = model(x)
        t = clean.argmax(1, keepdim=True)
        expected = torch.stack([(clean.gather(1, t) - model(x.index_fill(1, torch.tensor([g]), 0.0)).gather(1, t))[:, 0]
                                for g in range(4)], 1)
    torch.testing.assert_close(input_effects(model, x), expected, rtol=0, atol=1e-12)


def test_unit_effects_at_the_heads_input_equal_brute_force():
    model, x = _model_and_probe()
    with torch.no_grad():
        clean = model(x)
        t = clean.argmax(1, keepdim=True)
        cols = []
        for u in range(3):
            def pre(_m, args, u=u):
                z = args[0].clone()
                z[:, u] = 0.0
                return (z,)
            handle = model.head.register_forward_pre_hook(pre)
            cols.append((clean.gather(1, t) - model(x).gather(1, t))[:, 0])
            handle.remove()
    torch.testing.assert_close(unit_effects(model, x, "head:input"), torch.stack(cols, 1), rtol=0, atol=1e-12)


@pytest.mark.parametrize("site", ["base.0", "base.1", "base"])
def test_a_site_inside_the_meta_skeleton_is_refused_naming_it(site):
    model, x = _model_and_probe()
    with pytest.raises(ValueError, match=rf"Expected layer '{site}' to run with weights of its own, but module 'base' "
                                         r"holds its weights on the meta device.*functional_call"):
        unit_effects(model, x, site)


def test_the_layer_maps_default_layers_leave_the_skeleton_out():
    model, x = _model_and_probe()
    assert layer_causal_map(model, x).layers == ["head"]
