"""The backward() fallback of ``engine.leaf_gradients.leaf_grads`` (a reentrant activation checkpoint refuses
``torch.autograd.grad``) runs no gradient hook of the model's parameters: an optimizer stepped in the backward pass
(``register_post_accumulate_grad_hook``, torch's memory-saving recipe, as checkpointing is) would change the weights
during an audit, a ``register_hook`` logger would record the audit's gradients. The hooks are back afterwards."""

import weakref

import torch

from lightning_causal.causal import input_effects
from tests.causal.test_trial_newuser41_reentrant_gradients import _Net, _pair


def test_the_fallback_runs_no_parameter_hook_and_changes_no_weight():
    torch.manual_seed(0)
    plain = _Net(checkpointed=False).double().eval()
    model = _Net().double().eval()
    model.load_state_dict(plain.state_dict())
    calls = []

    def step(p):  # an optimizer stepped in the backward pass
        calls.append("post")
        with torch.no_grad():
            p.add_(p.grad, alpha=-0.1)

    for p in model.parameters():
        p.register_hook(lambda g: calls.append("pre"))
        p.register_post_accumulate_grad_hook(step)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(5, 4, dtype=torch.float64)
    got = input_effects(model, x, method="attribution")
    assert calls == []
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    torch.testing.assert_close(got, input_effects(plain, x, method="attribution"), rtol=0, atol=0)
    model(x).sum().backward()  # the hooks are back
    assert calls.count("pre") == calls.count("post") == 6


class _Box:  # holds one tensor the graph saved for its backward pass
    def __init__(self, t):
        self.t = t


def test_without_a_reentrant_checkpoint_the_graph_is_freed_as_the_caller_asks():
    """A graph without a reentrant checkpoint keeps no saved activations past the gradient (retain_graph=False): kept,
    the counterfactual search held the last step's activations through the next step's forward pass."""
    from torch.autograd.graph import saved_tensors_hooks

    from lightning_causal.causal.engine.leaf_gradients import leaf_grad

    torch.manual_seed(0)
    model = _Net(checkpointed=False).eval()
    x = torch.randn(3, 4, requires_grad=True)
    alive = weakref.WeakSet()

    def pack(t):
        box = _Box(t)
        alive.add(box)
        return box

    with saved_tensors_hooks(pack, lambda box: box.t):
        out = model(x)[:, 1].sum()
    assert len(alive) > 0
    grad = leaf_grad(out, x, model, retain_graph=True)
    assert len(alive) > 0  # kept where asked
    torch.testing.assert_close(leaf_grad(out, x, model), grad, rtol=0, atol=0)
    assert len(alive) == 0


def test_inputs_that_require_grad_through_a_reentrant_checkpoint():
    """Inputs that require grad (the output of an upstream step, a tensor made with requires_grad=True): the fallback
    read no gradient of their rows (not leaves of the graph) and refused as if the forward cut the gradient, writing
    the inputs' .grad on the way; the effects equal those of the model without checkpointing, no .grad written."""
    model, plain = _pair()
    x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    got = input_effects(model, x, method="attribution")
    torch.testing.assert_close(got, input_effects(plain, x, method="attribution"), rtol=0, atol=0)
    assert x.grad is None


def test_a_head_outside_the_model_keeps_its_grad_and_runs_no_hook():
    """review_s25g: a head given as ``output=`` (its weights are not the model's parameters) had the fallback's
    gradient accumulated into its ``.grad`` and its hooks run; the effects equal those through the unchecked model."""
    model, plain = _pair()
    torch.manual_seed(1)
    head = torch.nn.Linear(3, 2).double()
    calls = []
    for p in head.parameters():
        p.register_hook(lambda g: calls.append("pre"))
    x = torch.randn(6, 4, dtype=torch.float64)
    got = input_effects(model, x, output=lambda out: head(out), method="attribution")
    assert all(p.grad is None for p in head.parameters()) and calls == []
    torch.testing.assert_close(got, input_effects(plain, x, output=lambda out: head(out), method="attribution"), rtol=0,
                               atol=0)
