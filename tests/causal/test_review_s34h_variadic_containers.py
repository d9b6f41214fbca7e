"""Review of 96c5dcfa: a variadic forward given a tuple, a list or a dict of non-tensor values (an output size, a
config) in ``*args``/``**kwargs``. torch.fx's ``concrete_args`` flattens such a value into placeholders of its own and
the graph's output into a list, so the plain suffix that ``suffix_module`` built through the call returned a list
(``causal_graph``: 'Expected the model to return a tensor ... but got list'), or a suffix that asks for a tensor it was
never given, or a ``KeyError`` for an empty one, where the parent ran full passes. Such a value was refused then, as a
tensor inside a container is: full passes, the effects those of full passes; leftovers_s35a specialises it (a tuple,
list or mapping of Python scalars alone), as a number is, into the flat forward: the effects still those of full
passes, the fast path taken."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal.engine.suffix import SplitRefused, fx_split, suffix_module
from lightning_causal.causal.structure import graph_context
from lightning_causal.causal.structure.graph import causal_graph


class Sized(nn.Module):
    """``forward(x, *a)`` with ``a = (dims, gain)``: ``dims`` a tuple of ints, ``gain`` a number or a tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.l1, self.act, self.l2, self.act2, self.head = nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 2)

    def forward(self, x, *a):
        dims, gain = a
        out = self.head(self.act2(self.l2(self.act(self.l1(x))))) * gain
        return out.flip(dims) if len(dims) > 2 else out


class Configured(Sized):
    def forward(self, x, **kw):
        return super().forward(x, kw["cfg"]["dims"], kw["gain"])


def _model(cls):
    torch.manual_seed(0)
    return cls().double().eval()


X = torch.randn(24, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
CALLS = [(Sized, ((0,), 2.0)), (Sized, ((0, 1), 2.0)), (Sized, ((), 2.0)),
         (Sized, ((0, 1), torch.full((24, 1), 2.0, dtype=torch.float64))), (Configured, {"cfg": {"dims": (0,)}, "gain": 2.0})]


@pytest.mark.parametrize("cls, afa", CALLS)
def test_a_graph_of_a_variadic_forward_given_a_container_equals_full_passes(cls, afa, monkeypatch):
    model = _model(cls)
    got = causal_graph(model, X, ["act", "act2"], top_k=None, unit_dim=-1, additional_forward_args=afa)  # before: raised
    monkeypatch.setattr(graph_context.GraphContext, "suffix", lambda self, layer, total_rows=0: None)
    full = causal_graph(model, X, ["act", "act2"], top_k=None, unit_dim=-1, additional_forward_args=afa)
    assert [e[:2] for e in got.edges] == [e[:2] for e in full.edges] and len(full.edges) > 0
    assert [s["effect"] for s in got.edge_stats] == pytest.approx([s["effect"] for s in full.edge_stats], abs=1e-12)


@pytest.mark.parametrize("cls, afa", CALLS)
def test_the_split_and_the_plain_suffix_specialise_a_container_of_scalars(cls, afa):
    """leftovers_s35a: such a value is specialised as a number is (baked into the flat forward, no placeholders of
    torch.fx's own): the split and the plain suffix give the model's output."""
    model = _model(cls)
    args, kwargs = ((X, *afa), {}) if isinstance(afa, tuple) else ((X,), afa)
    want = model(*args, **kwargs)
    split = fx_split(model, "act", args, kwargs)  # before: SplitRefused, 'is a tuple'
    torch.testing.assert_close(split.recorder(*split.binding.values(args, kwargs))[0], want, atol=0, rtol=0)
    tail = suffix_module(model, "act", (args, kwargs))
    if isinstance((args[2:] or [None])[-1], torch.Tensor):  # a per-sample gain crosses the cut: no plain suffix
        assert tail is None
    else:
        torch.testing.assert_close(tail(model.act(model.l1(X))), want, atol=0, rtol=0)


def test_a_container_of_other_objects_stays_refused():
    model = _model(Sized)
    with pytest.raises(SplitRefused, match="holding values other than tensors and Python scalars"):
        fx_split(model, "act", (X, [object()], 2.0), {})
    assert suffix_module(model, "act", ((X, [object()], 2.0), {})) is None
