"""Leftovers of session 28: the layer causal map (``layer_causal_map``, ``LayerMapAudit``) on a model that takes
gradients inside its forward pass (forces ``F = -dE/dx`` by ``torch.autograd.grad(create_graph=True)``, newuser49's
trial) was run but its numbers never checked. They equal a hand ``do()``: each layer's ``||Δ_L(g, x)||`` and the
output's ``|δ_g|`` per input group, and each layer's relative response. But the map's statistics, computed after
``audit_mode`` from the clean pass's output and activations, carried the graph such a forward records under
``no_grad``: torch warned "Converting a tensor with requires_grad=True to a scalar may lead to unexpected behavior" at
the map's own ``float()`` (an error under ``-W error``). The clean pass's output and activations are numbers only now,
and the note on the causal graph's refusal (which stays: its clamps and empty circuit have no hand ``do()`` on a force
output) names the layer map among the estimators that run on such a model.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from lightning_causal.audits import LayerMapAudit, Probe
from lightning_causal.causal import causal_graph, layer_causal_map
from tests.test_trial_newuser49_forward_gradients import _model

LAYERS = ["net.0", "net.2"]


def _hand(model, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Per group ``g`` (one input column set to 0 by hand): the mean over samples of ``||h_L(x) - h_L(x | do(x_g := 0))||``
    for each layer, and of ``|F_0(x) - F_0(x | do(x_g := 0))|`` (``"<output>"``); and each layer's relative response
    ``mean ||Δ_L|| / mean ||h_L(x)||``."""
    acts: dict[str, torch.Tensor] = {}
    handles = [model.get_submodule(name).register_forward_hook(lambda _m, _i, o, k=name: acts.__setitem__(k, o.detach()))
               for name in LAYERS]
    try:
        f0, clean = model(x).detach()[:, 0], dict(acts)
        norms: dict[str, list[torch.Tensor]] = {name: [] for name in [*LAYERS, "<output>"]}
        for g in range(x.shape[1]):
            f = model(x.index_fill(1, torch.tensor([g]), 0.0)).detach()[:, 0]
            for name in LAYERS:
                norms[name].append((clean[name] - acts[name]).norm(dim=1))
            norms["<output>"].append((f0 - f).abs())
    finally:
        for handle in handles:
            handle.remove()
    effects = {name: torch.stack(v).mean(1).double() for name, v in norms.items()}
    response = torch.stack([torch.stack(norms[name]).mean() / clean[name].norm(dim=1).mean() for name in LAYERS]).double()
    return effects, response


@pytest.mark.parametrize("skip", [False, True])
def test_the_layer_map_of_forces_equals_a_hand_do_and_holds_no_graph(skip):
    model = _model(skip=skip)
    x = torch.randn(12, 3, generator=torch.Generator().manual_seed(4))
    effects, response = _hand(model, x)
    assert effects["<output>"].min() > 1e-3  # every group moves the force
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Converting a tensor with requires_grad=True")  # before: raised (skip=False)
        lm = layer_causal_map(model, x, torch.tensor([[0, 1, 2]]), layers=LAYERS, target=0)
        audit = LayerMapAudit(feature_mask=torch.tensor([[0, 1, 2]]), layers=LAYERS, target=0).run(model, Probe(x))
    for node in [*LAYERS, "<output>"]:
        torch.testing.assert_close(lm.group_effects[node], effects[node], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(lm.response, response, rtol=1e-5, atol=1e-7)
    assert not lm.response.requires_grad and not lm.group_effects["<output>"].requires_grad
    torch.testing.assert_close(audit.vectors["layer_response"], response.float(), rtol=1e-5, atol=1e-7)


def test_the_graphs_refusal_names_the_layer_map_among_what_runs():
    with pytest.raises(RuntimeError, match=r"not have been used in the graph.*the layer causal map \(LayerMapAudit\).*"
                                           r"the causal graph and the first-order"):
        causal_graph(_model(), torch.randn(4, 3), ["net.1", "net.3"], target=0)
