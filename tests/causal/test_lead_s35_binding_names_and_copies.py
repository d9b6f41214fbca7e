"""Final read of session 35 (git diff c92c0aac), two cases 3d753bba's binding let through.

- A read-only mapping default (``cfg=types.MappingProxyType({...})``, a common way to avoid a mutable default) cannot be
  deep-copied: ``unit_effects`` and ``causal_graph`` raised ``TypeError: cannot pickle 'mappingproxy'`` where c92c0aac
  took the hooks path; the copy's failure is a refusal of the fast path now.
- The duplicate-name check covered the tensors' names only: two specialised values of one name (a ``*a`` value ``_a_0``
  beside a keyword ``_a_0``; a positional-only name again as a ``**kw`` key) shared one constant, and ``suffix_module``
  returned a suffix 5.09 / 9.07 off the model; it is refused again (``None``), as at c92c0aac.
"""
import types

import torch
from torch import nn

from lightning_causal.causal.effects.unit_effects import unit_effects
from lightning_causal.causal.engine.suffix import suffix_module
from lightning_causal.causal.structure.graph import causal_graph


class _Body(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l1, self.act, self.act2, self.l2 = nn.Linear(3, 4), nn.ReLU(), nn.ReLU(), nn.Linear(4, 2)

    def body(self, x):
        return self.l2(self.act2(self.act(self.l1(x))))


class ReadOnlyDefault(_Body):
    def forward(self, x, cfg=types.MappingProxyType({"s": 2.0})):
        return self.body(x) * cfg["s"]


class PositionalOnlyAgainAsKey(_Body):
    def forward(self, x, scale=1.0, /, **kw):
        return self.body(x) * scale * kw.get("scale", 1.0)


class VariadicBesideItsName(_Body):
    def forward(self, x, *a, _a_0=1.0):
        return self.body(x) * a[0] * _a_0


def _model(cls):
    torch.manual_seed(0)
    return cls().double().eval()


def test_a_read_only_mapping_default_is_served_by_full_passes():
    model, x = _model(ReadOnlyDefault), torch.randn(8, 3, dtype=torch.float64)
    got = unit_effects(model, x, "act", target=0, unit_dim=-1)
    want = unit_effects(model, x, "act", target=0, unit_dim=-1, use_suffix=False)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    graph = causal_graph(model, x, ["act", "act2"], top_k=None, unit_dim=-1)
    assert graph is not None


def test_values_sharing_a_name_get_no_suffix():
    x = torch.randn(8, 3, dtype=torch.float64)
    for cls in (PositionalOnlyAgainAsKey, VariadicBesideItsName):
        model = _model(cls)
        assert suffix_module(model, "act", ((x, 0.5), {("scale" if cls is PositionalOnlyAgainAsKey else "_a_0"): 3.0})) is None
