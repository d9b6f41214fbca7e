"""A hypernetwork that caches its generated weights per task id in eval mode (task_newuser124): the weights that a
pass under ``intervene`` generated stay in the cache after the block, where every later pass reads them; the block
warns of them, naming the dict and how to clear it. Where the cache was filled before the block, the generator does
not run, and the warning of a site that did not run says why."""

import warnings

import torch
from torch import nn

from lightning_causal.causal import Zero, intervene
from lightning_causal.causal.engine.intervention_hooks import UnreachedSiteWarning


class CachedHyper(nn.Module):
    """Task id -> the weights [N, 3, 4] of a linear target network applied per sample by einsum; in eval mode the
    weights of each task id are generated once and kept in ``self.cache``."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(2, 5)
        self.gen = nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 12))
        self.cache = {}
        self.calls = {"n": 0}  # a counter of plain values: no tensor, never warned of

    def forward(self, x, t):
        self.calls["n"] += 1
        if self.training:
            w = self.gen(self.emb(t)).view(-1, 3, 4)
        else:
            for i in t.unique().tolist():
                if i not in self.cache:
                    self.cache[i] = self.gen(self.emb(torch.tensor([i])))[0].view(3, 4)
            w = torch.stack([self.cache[i] for i in t.tolist()])
        return torch.einsum("noi,ni->no", w, x)


def _data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(6, 4, generator=g), torch.tensor([0, 1, 0, 1, 1, 0])


def test_weights_cached_under_the_intervention_are_warned_of_with_the_way_out():
    m, (x, t) = CachedHyper().eval(), _data()
    with torch.no_grad():
        clean = m.train()(x, t)  # the uncached path: the reference
        m.eval()
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            with intervene(m, {"gen.1": Zero(units=[0, 1, 2])}):
                inside = m(x, t)
        stale = m(x, t)  # the intervened weights, read from the cache after the block
        cached = [str(w.message) for w in record if type(w.message).__name__ == "CachedInterventionWarning"]
        assert len(cached) == 1, [str(w.message) for w in record]  # before: no warning, the stale cache silent
        message = cached[0]
        m.cache.clear()  # the way out the warning names
        after = m(x, t)
    assert "cache[0], cache[1]" in message and "`model.cache.clear()`" in message and "'gen.1'" in message
    assert "calls" not in message  # a dict of numbers holds no intervened tensor
    assert not torch.allclose(inside, clean)
    torch.testing.assert_close(stale, inside)
    torch.testing.assert_close(after, clean)


def test_a_cache_filled_before_the_block_is_read_and_the_site_warning_names_the_cache():
    m, (x, t) = CachedHyper().eval(), _data()
    with torch.no_grad():
        clean = m(x, t)
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            with intervene(m, {"gen.1": Zero()}):
                out = m(x, t)
    torch.testing.assert_close(out, clean)  # the generator did not run: the warning says so, and why
    assert [type(w.message) for w in record] == [UnreachedSiteWarning]
    assert "cached per task id" in str(record[0].message)


def test_a_model_without_a_cache_is_not_warned_of():
    m = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    m.stats = {"seen": 0}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error")
        with intervene(m, {"1": Zero()}):
            m(torch.randn(5, 4))
