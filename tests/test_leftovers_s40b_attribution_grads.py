"""``attribution_context`` put every parameter's ``.grad`` back by hand, which ``audit_mode`` inside it already does
(``inner_steps_kept`` sets the ``.grad`` tensors aside for the block and puts the very objects back): the second
restoring was removed. A Captum attribution still leaves the ``.grad`` a fit left, the very tensors with their values,
alone, inside an outer block too, also where the model's forward clears them (``self.zero_grad()``)."""
import pytest
import torch
from torch import nn

from lightning_causal.baselines.captum_methods import attribute
from lightning_causal.baselines.layer_methods import layer_attribute
from lightning_causal.causal.engine.state import audit_mode


class _Clears(nn.Module):
    def __init__(self, clear: bool):
        super().__init__()
        torch.manual_seed(0)
        self.clear = clear
        self.body, self.head = nn.Linear(4, 6), nn.Linear(6, 3)

    def forward(self, x):
        if self.clear:
            self.zero_grad()  # .grad set to None
        return self.head(torch.relu(self.body(x)))


def _with_grads(clear: bool) -> tuple[nn.Module, list]:
    model = _Clears(clear)
    model(torch.randn(5, 4)).sum().backward()
    model.head.bias.grad = None  # a parameter without a gradient stays without
    return model, [(p, p.grad, None if p.grad is None else p.grad.clone()) for p in model.parameters()]


def _check(saved: list) -> None:
    for p, grad, values in saved:
        assert p.grad is grad  # the very object (an optimizer, DDP's buckets hold it)
        if grad is not None:
            assert torch.equal(p.grad, values)
        assert p.requires_grad


@pytest.mark.parametrize("clear", [False, True])
@pytest.mark.parametrize("outer", [False, True])
def test_attributions_leave_the_grads_alone(clear, outer):
    model, saved = _with_grads(clear)
    x = torch.randn(3, 4)
    if outer:
        with audit_mode(model, grad=True):
            attribute(model, x, "IntegratedGradients", target=1)
            layer_attribute(model, x, "body", "LayerGradientXActivation", target=1)
    else:
        attribute(model, x, "IntegratedGradients", target=1)
        attribute(model, x, "Saliency", target=1)
        layer_attribute(model, x, "body", "LayerGradientXActivation", target=1)
    _check(saved)
