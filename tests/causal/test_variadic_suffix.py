"""The torch.fx suffix serves forwards with ``*args``/``**kwargs`` (a LightningModule's ``forward(self, *a)``
delegating to a network, ``forward(self, x, **kw)``): the call is traced through a flat signature of as many
explicit parameters as it has (``suffix._Binding``), and a call of another structure is refused, not mis-bound."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal.effects.unit_effects import unit_effects
from lightning_causal.causal.engine.suffix import SplitRefused, flat_call, fx_split, suffix_module
from lightning_causal.causal.structure.graph import causal_graph


class PaddedGraphNet(nn.Module):
    """``forward(x [B, N, F], adj [B, N, N], mask [B, N])``: the adjacency and the mask are used after every layer."""

    def __init__(self) -> None:
        super().__init__()
        self.l1, self.act, self.l2, self.act2, self.head = nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2)

    def net(self, x, adj, mask, scale=1.0):
        h = self.act(self.l1(adj @ x))
        h2 = self.act2(self.l2(adj @ h)) * mask[..., None]
        return self.head(h2.sum(1)) * scale


class Explicit(PaddedGraphNet):
    def forward(self, x, adj, mask):
        return self.net(x, adj, mask)


class Star(PaddedGraphNet):
    def forward(self, *a):
        return self.net(*a)


class Keywords(PaddedGraphNet):
    def forward(self, x, **kw):
        return self.net(x, kw["adj"], kw["mask"], **({"scale": kw["scale"]} if "scale" in kw else {}))


def _model(cls):
    torch.manual_seed(0)
    return cls().double().eval()


def _data(b=12, n=4):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(b, n, 3, generator=g, dtype=torch.float64)
    adj = torch.rand(b, n, n, generator=g, dtype=torch.float64)
    mask = (torch.rand(b, n, generator=g) > 0.3).double()
    return x, adj, mask


@pytest.mark.parametrize("cls, afa", [(Star, "tuple"), (Keywords, "dict"), (Keywords, "dict+scale"), (Star, "tuple+scale")])
def test_unit_effects_of_a_variadic_forward_run_the_suffix_and_equal_full_passes(cls, afa):
    x, adj, mask = _data()
    args = {"tuple": (adj, mask), "tuple+scale": (adj, mask, 2.0), "dict": {"adj": adj, "mask": mask},
            "dict+scale": {"adj": adj, "mask": mask, "scale": 2.0}}[afa]
    model = _model(cls)
    got, info = unit_effects(model, x, "act", target=0, unit_dim=-1, additional_forward_args=args, return_info=True)
    full = unit_effects(model, x, "act", target=0, unit_dim=-1, additional_forward_args=args, use_suffix=False)
    assert info.path == "fx", info.reason  # before: "hooks", "variadic forward arguments are not traced"
    torch.testing.assert_close(got, full, atol=1e-12, rtol=0)


def _rows_through(model, layer):
    rows = []
    handle = getattr(model, layer).register_forward_hook(lambda m, i, o: rows.append(i[0].shape[0]))
    return rows, handle


def test_graph_of_a_star_forward_runs_as_few_rows_as_the_explicit_forward_and_has_its_edges():
    x, adj, mask = _data(b=16)
    graphs, counts = [], []
    for cls in (Explicit, Star):
        model = _model(cls)
        rows, handle = _rows_through(model, "l1")
        try:
            graphs.append(causal_graph(model, x, ["act", "act2"], top_k=None, unit_dim=-1, additional_forward_args=(adj, mask)))
        finally:
            handle.remove()
        counts.append(sum(rows))
    explicit, star = graphs
    assert counts[1] == counts[0], counts  # before: every run of the star forward went through l1 (full passes)
    assert [e[:2] for e in star.edges] == [e[:2] for e in explicit.edges] and len(star.edges) > 0
    effects = [[s["effect"] for s in g.edge_stats] for g in graphs]
    assert effects[1] == pytest.approx(effects[0], abs=1e-12)
    assert star.node_stats.keys() == explicit.node_stats.keys()


class Extras(nn.Module):
    """``forward(x, *extra)``: the graph depends on how many extra tensors come."""

    def __init__(self) -> None:
        super().__init__()
        self.l1, self.act, self.l2 = nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)

    def forward(self, x, *extra):
        h = self.act(self.l1(x))
        for e in extra:
            h = h + e
        return self.l2(h)


def test_a_call_with_another_count_of_variadic_values_is_refused_not_mis_bound():
    model = _model(Extras)
    x, e1, e2 = (torch.randn(5, k, dtype=torch.float64) for k in (3, 4, 4))
    split = fx_split(model, "act", (x, e1, e2), {})
    assert len(split.binding.values((x, e1, e2), {})) == 3
    out = split.recorder(*split.binding.values((x, e1, e2), {}))[0]
    torch.testing.assert_close(out, model(x, e1, e2), atol=0, rtol=0)
    with pytest.raises(SplitRefused, match="variadic"):
        split.binding.values((x, e1), {})
    with pytest.raises(SplitRefused, match="variadic"):
        split.binding.values((x, e1, e2, e2), {})
    kw = _model(Keywords)
    xg, adj, mask = _data()
    split = fx_split(kw, "act", (xg,), {"adj": adj, "mask": mask})
    with pytest.raises(SplitRefused, match="variadic"):
        split.binding.values((xg,), {"adj": adj, "mask": mask, "scale": 2.0})


def test_the_traced_copy_leaves_the_model_and_its_class_as_they_were():
    model = _model(Star)
    x, adj, mask = _data()
    fx_split(model, "act", (x, adj, mask), {})
    assert type(model) is Star and "forward" not in vars(model)
    torch.testing.assert_close(model(x, adj, mask), Explicit.forward(model, x, adj, mask), atol=0, rtol=0)


def test_tensors_inside_a_variadic_container_stay_refused():
    model = _model(Extras)
    x, e1 = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    with pytest.raises(SplitRefused, match="inside a container"):
        fx_split(model, "act", (x, [e1]), {})


class StarMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))

    def forward(self, *a, scale=1.0):
        return self.body(*a) * scale


def test_the_plain_suffix_of_a_star_forward_is_traced_through_the_call():
    model = _model(StarMLP)
    x = torch.randn(5, 3, dtype=torch.float64)
    assert suffix_module(model, "body.1") is None  # the bare trace cannot unpack *a, as before
    tail = suffix_module(model, "body.1", ((x,), {"scale": 3.0}))
    h = model.body[1](model.body[0](x))
    torch.testing.assert_close(tail(h), model(x, scale=3.0), atol=0, rtol=0)
    assert [n.op for n in tail.graph.nodes].count("placeholder") == 1


def test_a_call_of_tensors_alone_that_fills_no_variadic_parameter_is_traced_as_before():
    model, x = _model(Explicit), _data()
    for call in (x, (x[0], [x[1]], x[2])):  # a container of tensors: a placeholder, the tracer decides
        root = flat_call(model, call, {})
        assert type(root) is Explicit and root is not model  # a shallow copy (the tracer's constants land on it)
