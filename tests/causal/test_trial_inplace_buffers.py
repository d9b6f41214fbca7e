"""Trial (inplace): estimators leave buffers that a model updates in every forward pass as they were."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import causal_graph, input_effects, layer_causal_map, unit_effects


class Observed(nn.Module):
    """Updates buffers in eval mode too: a call counter (in place) and a running maximum of a hidden
    activation (reassigned), as an enabled quantisation observer does."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.out = nn.Linear(4, 5), nn.Linear(5, 5), nn.Linear(5, 2)
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))
        self.register_buffer("max_seen", torch.zeros(()))

    def forward(self, x):
        self.calls += 1
        h = torch.tanh(self.a(x))
        self.max_seen = torch.maximum(self.max_seen, h.detach().abs().max())
        return self.out(torch.tanh(self.b(h)))


@pytest.mark.parametrize("estimator", [
    lambda m, x: unit_effects(m, x, "a", max_batch_size=3),
    lambda m, x: unit_effects(m, x, "a", use_suffix=False),
    lambda m, x: unit_effects(m, x, "a", method="atp"),
    lambda m, x: input_effects(m, x),
    lambda m, x: causal_graph(m, x, ["a", "b"]),
    lambda m, x: layer_causal_map(m, x, torch.arange(4), ["a", "b"]),
], ids=["exact", "full", "atp", "input", "graph", "layer_map"])
def test_buffers_updated_in_forward_are_restored(estimator):
    # the call counter moved by every pass the estimator ran (93 for unit_effects) and the running
    # maximum took the intervened rows' values: the model was not left as it was found
    torch.manual_seed(0)
    model = Observed()
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        model(x)
    buffers = dict(model.named_buffers())
    saved = {k: v.clone() for k, v in buffers.items()}
    estimator(model, x)
    assert {k: v.item() for k, v in model.named_buffers()} == {k: v.item() for k, v in saved.items()}
    assert all(b is buffers[k] for k, b in model.named_buffers())  # the very tensors (an optimizer or a view may hold them)
