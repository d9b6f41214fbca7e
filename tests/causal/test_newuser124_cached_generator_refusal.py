"""The estimators refuse a hypernetwork's generator that the model skips once its per-task cache holds the weights
(task_newuser124); the refusal named branches and stochastic depth (a cold cache: the generator ran in the first
pass only) or functional code and a frozen teacher (a warm cache: it never ran), never the cache. It now names the
dict and the way out, and leaves the cache as it was."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects


class CachedHyper(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(2, 5)
        self.gen = nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 12))
        self.cache = {}

    def forward(self, x, t):
        for i in t.unique().tolist():
            if i not in self.cache:
                self.cache[i] = self.gen(self.emb(torch.tensor([i])))[0].view(3, 4)
        return torch.einsum("noi,ni->no", torch.stack([self.cache[i] for i in t.tolist()]), x)


class Skipping(nn.Module):  # a module on a branch the first sample does not take: no cache, no word of one
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 3), nn.Linear(4, 3)

    def forward(self, x, t):
        return self.b(x) if bool((t == 1).all()) else self.a(x)


def _inputs():
    return torch.randn(6, 4, generator=torch.Generator().manual_seed(1)), torch.tensor([0, 1, 0, 1, 1, 0])


@pytest.mark.parametrize("warm", [False, True])
def test_a_generator_skipped_by_the_cache_is_refused_naming_the_cache(warm):
    m, (x, t) = CachedHyper().eval(), _inputs()
    if warm:
        with torch.no_grad():
            m(x, t)
    before = dict(m.cache)
    with pytest.raises(ValueError, match="the model holds tensors in the dict 'cache'") as err:
        unit_effects(m, (x, t), "gen.1", unit_dim=-1)
    assert "audit the model with its cache off" in str(err.value)
    assert m.cache.keys() == before.keys() and all(m.cache[k] is before[k] for k in before)


def test_a_module_on_a_branch_keeps_its_words():
    with pytest.raises(ValueError, match="did not run") as err:
        unit_effects(Skipping().eval(), _inputs(), "b")
    assert "cache" not in str(err.value)
