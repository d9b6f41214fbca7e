"""Lead (session 37): a torch.fx trace of the suffix path leaves no Proxy in the user's model.

The trace runs on a shallow copy of the model, whose ``_buffers`` dict and submodules are the model's own: a forward
that reassigns a registered buffer (``self.max_seen = torch.maximum(...)``, a quantisation observer) or sets an
attribute on a submodule (``self.last = h``) wrote the trace's ``Proxy`` objects into the model, where every pass of
the audit then read them (and 54542695's state check crashed on them with a TraceError)."""

import torch
from torch import nn
from torch.fx.proxy import Proxy

from lightning_causal.causal import unit_effects
from lightning_causal.causal.engine.suffix import _trace


class Remembers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 5)
        self.register_buffer("max_seen", torch.zeros(()))

    def forward(self, x):
        h = torch.tanh(self.lin(x))
        self.max_seen = torch.maximum(self.max_seen, h.detach().abs().max())
        self.last = h.detach()
        return h


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.out = Remembers(), nn.Linear(5, 5), nn.Linear(5, 2)
        self.register_buffer("top", torch.zeros(()))

    def forward(self, x):
        h = self.a(x)
        self.top = torch.maximum(self.top, h.detach().max())
        return self.out(torch.tanh(self.b(h)))


def _proxies(model: nn.Module) -> list[str]:
    return [f"{name}.{k}" for name, m in model.named_modules() for k, v in {**m._buffers, **vars(m)}.items()
            if isinstance(v, Proxy)]


def test_the_trace_puts_back_buffers_and_submodule_attributes():
    torch.manual_seed(0)
    model = Net()
    _trace(model, "b")
    assert _proxies(model) == []
    assert not hasattr(model.a, "last")  # created by the trace only: removed


def test_unit_effects_on_a_model_reassigning_buffers_leaves_them_as_found():
    torch.manual_seed(0)
    model = Net().eval()
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        model(x)
    before = {k: v for k, v in model.named_buffers()}
    values = {k: v.clone() for k, v in before.items()}
    effects = unit_effects(model, x, "b")
    full = unit_effects(model, x, "b", use_suffix=False)
    torch.testing.assert_close(effects, full)
    assert all(model.get_buffer(k) is v for k, v in before.items())
    assert all(torch.equal(model.get_buffer(k), v) for k, v in values.items())
    assert _proxies(model) == []


class Scaled(nn.Module):
    """A skip connection (so the graph's bypass trace runs) and an input scaled by a buffer the forward reassigns."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b, self.c = nn.Linear(4, 6), nn.Linear(6, 6), nn.Linear(6, 3)
        self.register_buffer("max_seen", torch.zeros(()))

    def forward(self, x):
        self.max_seen = torch.maximum(self.max_seen, x.max())
        h = torch.relu(self.a(x / self.max_seen.clamp_min(1.0)))
        return self.c(torch.relu(self.b(h)) + h)


def test_the_graph_bypass_trace_puts_back_buffers_too():
    # graph_context.bypassed traced the model itself and left the Proxy in `max_seen`: the graph's next pass read it
    # (TypeError: Expected module 'a' to return a tensor ... but got Proxy)
    from lightning_causal.causal import causal_graph
    from lightning_causal.causal.structure.graph_context import bypassed

    model = Scaled().eval()
    assert bypassed(model, "a", "b")
    assert _proxies(model) == []
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        model(x)
    kept = model.max_seen
    causal_graph(model, x, ["a", "b"], top_k=3)
    assert model.max_seen is kept and _proxies(model) == []
