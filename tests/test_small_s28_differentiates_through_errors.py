"""The check that tells a forward differentiating through the layer from one that only switches autograd on: a failure
of its constants pass (the layer's output as constants) counts as "needs the graph" only where the pass with the graph
kept runs; where that fails too (out of memory), the first error is raised, and atp is not refused for a wrong reason."""

import pytest
import torch
from torch import nn

from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.prefix_cache import _differentiates_through, prefix_cache
from lightning_causal.causal.engine.state import audit_mode


class _SwitchesAutogradOn(nn.Module):
    """Switches autograd on and takes no gradient; ``fail`` makes its passes raise: ``"constants"`` where the layer's
    output comes as constants (no graph), ``"both"`` in every pass (a memory the probe's batch no longer fits)."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
        self.error, self.fail = error, None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            h = self.net[1](self.net[0](x))
            if self.fail == "both" or (self.fail == "constants" and not h.requires_grad):
                raise self.error
            return self.net[2](h)


@pytest.mark.parametrize("error", [MemoryError("out of memory"), RuntimeError("CUDA out of memory")], ids=["MemoryError", "RuntimeError"])
def test_a_constants_pass_failing_alone_needs_the_graph_and_failing_with_the_kept_pass_is_raised(error):
    torch.manual_seed(0)
    model, x = _SwitchesAutogradOn(error).eval(), torch.randn(5, 3)
    forward = Forward(model)
    with audit_mode(model):
        cache = prefix_cache(forward, (x,), "net.1", path="full")
        assert not _differentiates_through(cache, (x,), model.net[1])  # only switches autograd on: same output
        model.fail = "constants"
        assert _differentiates_through(cache, (x,), model.net[1])  # the graph kept runs: the constants' doing
        model.fail = "both"
        with pytest.raises(type(error), match="out of memory"):  # before: True, atp refused as taking gradients
            _differentiates_through(cache, (x,), model.net[1])
