"""Models that take gradients inside their forward pass (newuser49's trial): an energy model whose forward returns
the forces ``F = -dE/dx`` by ``torch.autograd.grad(E.sum(), x, create_graph=True)``.

- ``unit_effects`` on a hidden layer of such a model stopped with torch's "The differentiated Tensor at index 0
  appears to not have been used in the graph": the hook split's replay answered the layer from the cache, and the
  full path's passes (its trial pass, the batch-size trial) put constants in the layer's place, cutting the inputs
  off the graph. The effects now equal a hand ``do()`` (a forward hook setting the unit on the live output).
- A forward that takes gradients without switching autograd on (run by the estimators under ``torch.no_grad()``)
  failed with torch's bare "element 0 of tensors does not require grad"; the estimators that patch cached values
  into a layer (the causal graph) with the "not used in the graph" error. Both now say why and what to do.
"""

import pytest
import torch
from torch import nn

from lightning_causal.causal import causal_graph, input_effects, unit_effects


class Forces(nn.Module):
    """F = -dE/dx of a small energy network; ``skip``: E gains 0.5 |x|^2, a path around the hidden layers."""

    def __init__(self, skip: bool = False, enable_grad: bool = True) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 1))
        self.skip, self.enable_grad = skip, enable_grad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad() if self.enable_grad else torch.autograd.grad_mode.set_grad_enabled(torch.is_grad_enabled()):
            x = x if x.requires_grad else x.detach().requires_grad_(True)
            energy = self.net(x).sum() + (0.5 * (x**2).sum() if self.skip else 0.0)
            return -torch.autograd.grad(energy, x, create_graph=True)[0]


def _model(**kwargs) -> Forces:
    torch.manual_seed(0)
    return Forces(**kwargs).eval()


def _hand_effects(model: Forces, x: torch.Tensor, layer: str, units: int, target: int) -> torch.Tensor:
    """f_t(x) - f_t(x | do(h_u := 0)), the unit set to 0 on the live output by a forward hook."""
    clean = model(x).detach()[:, target]
    columns = []
    for u in range(units):
        def hook(_m, _i, out, u=u):
            out = out.clone()
            out[:, u] = 0.0
            return out

        handle = model.get_submodule(layer).register_forward_hook(hook)
        try:
            columns.append(clean - model(x).detach()[:, target])
        finally:
            handle.remove()
    return torch.stack(columns, 1)


@pytest.mark.parametrize("skip", [False, True])
@pytest.mark.parametrize("layer, units", [("net.1", 6), ("net.3", 5)])
def test_unit_effects_on_forces_equal_a_hand_do(skip, layer, units):
    model = _model(skip=skip)
    x = torch.randn(7, 3, generator=torch.Generator().manual_seed(1))
    hand = _hand_effects(model, x, layer, units, target=0)
    assert hand.abs().max() > 1e-3  # the units move the forces
    effects = unit_effects(model, x, layer, unit_dim=-1, target=0)
    torch.testing.assert_close(effects, hand, rtol=1e-5, atol=1e-6)


def test_input_effects_on_forces_equal_a_hand_do():
    model = _model(skip=True)
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(2))
    clean = model(x).detach()[:, 1]
    hand = torch.stack([clean - model(x.index_fill(1, torch.tensor([g]), 0.0)).detach()[:, 1] for g in range(3)], 1)
    torch.testing.assert_close(input_effects(model, x, target=1), hand)


def test_a_forward_that_takes_gradients_without_autograd_on_is_told_to_switch_it_on():
    model = _model(enable_grad=False)
    x = torch.randn(4, 3)
    with pytest.raises(RuntimeError, match=r"does not require grad.*under torch.no_grad\(\).*with torch.enable_grad\(\)"):
        input_effects(model, x, target=0)


def test_the_causal_graph_of_forces_says_which_estimators_intervene_on_such_a_model():
    model = _model()
    x = torch.randn(4, 3)
    with pytest.raises(RuntimeError, match=r"not have been used in the graph.*cached from the probe.*method='exact'"):
        causal_graph(model, x, ["net.1", "net.3"], target=0)


@pytest.mark.parametrize("kwargs", [{"method": "atp"}, {"method": "attribution"}, {"screen": 2}])
def test_first_order_unit_estimates_of_forces_are_refused(kwargs):
    # before: "atp" returned numbers unrelated to the exact effects (sample 0, unit 1 of net.1: exact 0.0693, atp
    # -0.0001; unit 3: -0.0216 and 0.0012), "attribution" and screen= stopped with torch's "not used in the graph"
    model = _model()
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(3))
    with pytest.raises(ValueError, match=r"'net.1'.*takes gradients in its forward pass.*Use method='exact'"):
        unit_effects(model, x, "net.1", unit_dim=-1, target=0, **kwargs)


def test_a_full_pass_under_the_callers_autograd_gives_a_masked_layers_output_back_as_it_was():
    # keeping_graph (6a80149c) added live - live.detach() also where the caller ran the pass under autograd (the
    # first-order estimates) on any model: a layer's output of -inf (masked scores) became NaN, and so did the output
    from lightning_causal.causal.engine.prefix_cache import cache_prefix
    from lightning_causal.causal.engine.suffix_runners import keeping_graph

    class Mask(nn.Module):
        def forward(self, h: torch.Tensor) -> torch.Tensor:
            return h.masked_fill(torch.arange(h.shape[1]) >= 3, float("-inf"))

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 5), Mask(), nn.Softmax(-1), nn.Linear(5, 2)).eval()
    x = torch.randn(4, 3)
    with torch.no_grad():
        cache = cache_prefix(model, x, "1", path="full")
    rows = torch.arange(4)
    with torch.enable_grad():
        out = cache(cache.value[rows], rows)
    torch.testing.assert_close(out, model(x))
    live = torch.tensor([1.0, float("-inf")], requires_grad=True) * 1.0
    kept = keeping_graph(live.detach().clone(), live, live.detach())
    assert torch.equal(kept.detach(), live.detach())  # -inf stays -inf, not NaN
