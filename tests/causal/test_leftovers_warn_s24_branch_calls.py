"""unit_effects leaves unrun the rows whose intervention leaves the layer's cached output as it is, only where the
prefix cache edits that output and nothing else: a layer called once per pass (``PrefixCache.edits_value``). Its
calls were counted in the trial pass of samples 0 and 1 only, so a layer that the forward calls again on a branch
some other sample takes (``if mask.any(): h = torch.where(mask, act(fc2(h)), h)``) counted 1: the rows of the samples
on the branch were left unrun where the edit of the second call moves their output (effects off by 0.086). The hooks
path now counts the calls in its pass over the probe too. A branch that calls the layer on fewer rows is refused."""

import sys

import pytest
import torch
from torch import nn

import lightning_causal.causal.effects.unit_effects  # noqa: F401  # the module (the package exports the function)
from lightning_causal.causal import unit_effects
from lightning_causal.causal.engine.prefix_cache import cache_prefix
from lightning_causal.causal.engine.state import audit_mode

UE = sys.modules["lightning_causal.causal.effects.unit_effects"]


class _Branch(nn.Module):
    """``act`` is called again, on every row (or on the rows on the branch only: ``fewer``), when some sample has
    feature 0 above 1: not the trial samples 0 and 1."""

    def __init__(self, fewer: bool = False):
        super().__init__()
        self.fc1, self.act, self.fc2, self.head = nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 32), nn.Linear(32, 3)
        self.fewer = fewer

    def forward(self, x):
        h = self.act(self.fc1(x))
        mask = x[:, 0] > 1.0
        if mask.any():
            if self.fewer:
                h = h.clone()
                h[mask] = self.act(self.fc2(h[mask]))
            else:
                h = torch.where(mask[:, None], self.act(self.fc2(h)), h)
        return self.head(h)


def _x() -> torch.Tensor:
    x = torch.randn(12, 20, generator=torch.Generator().manual_seed(1))
    x[:, 0] = -1.0
    x[5, 0], x[8, 0] = 2.0, 3.0  # samples 5 and 8 take the branch
    return x


def test_a_layer_called_again_on_a_branch_of_other_samples_runs_every_row(monkeypatch):
    torch.manual_seed(0)
    model, x = _Branch().eval(), _x()
    with audit_mode(model):
        cache = cache_prefix(model, x, "act")
    assert cache.path == "hooks" and cache.calls == 2 and not cache.edits_value
    skipped = unit_effects(model, x, "act")
    monkeypatch.setattr(UE, "moving_rows", lambda *args: None)
    every = unit_effects(model, x, "act")
    assert torch.equal(skipped, every)
    # each sample alone, its unit zeroed in every call of `act` (a full forward pass per sample and unit): the logit
    # of its predicted class, clean minus intervened
    ref = torch.empty_like(every)
    with torch.no_grad():
        first = model.fc1(x).relu()
        for s in range(12):
            clean = model(x[s:s + 1])[0]
            k = int(clean.argmax())
            for u in range(32):
                def zero(_m, _i, out, u=u):
                    out = out.clone()
                    out[:, u] = 0.0
                    return out
                handle = model.act.register_forward_hook(zero)
                try:
                    ref[s, u] = clean[k] - model(x[s:s + 1])[0, k]
                finally:
                    handle.remove()
    torch.testing.assert_close(skipped, ref, rtol=0, atol=1e-6)
    on_branch_at_zero = (first[[5, 8]] == 0) & (ref[[5, 8]] != 0)  # rows a count of 1 call would leave unrun
    assert int(on_branch_at_zero.sum()) > 0


def test_a_branch_that_calls_the_layer_on_fewer_rows_is_refused():
    torch.manual_seed(0)
    with pytest.raises(ValueError, match=r"Expected every call of the layer in a forward pass to return one row per row"):
        unit_effects(_Branch(fewer=True).eval(), _x(), "act")
