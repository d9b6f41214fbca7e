"""Causal graphs over neurons and heads of ``[N, T, D]`` layers (``unit_dim``, ``num_heads``)
equal the graphs of the same network whose layers return their units on dimension 1."""

import pytest
import torch
from torch import nn

from lightning_causal.audits import CausalGraphAudit, Probe
from lightning_causal.causal import causal_graph


class Units(nn.Module):
    """Identity, or ``[N, T, H * d] -> [N, H, d, T]`` (units first; ``d = 1``: ``[N, D, T]``)."""

    def __init__(self, first: bool, heads: int | None) -> None:
        super().__init__()
        self.first, self.heads = first, heads

    def forward(self, h):
        if not self.first:
            return torch.relu(h)
        n, t, d = h.shape
        h = torch.relu(h)
        return h.view(n, t, self.heads, d // self.heads).permute(0, 2, 3, 1) if self.heads else h.transpose(1, 2)


def back(h, heads):
    """Undo :class:`Units` (``[N, H, d, T]`` or ``[N, D, T]`` -> ``[N, T, D]``)."""
    if heads:
        n, hh, d, t = h.shape
        return h.permute(0, 3, 1, 2).reshape(n, t, hh * d)
    return h.transpose(1, 2)


class Seq(nn.Module):
    """Embedding, two Linear + ReLU blocks on [N, T, D] with a skip around the second, mean, head."""

    def __init__(self, first: bool, heads: int | None = None) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(12, 6)
        self.fc1, self.fc2, self.head = nn.Linear(6, 6), nn.Linear(6, 6), nn.Linear(6, 3)
        self.u1, self.u2 = Units(first, heads), Units(first, heads)
        self.first, self.heads = first, heads

    def forward(self, ids):
        h1 = self.u1(self.fc1(self.emb(ids)))
        h1 = back(h1, self.heads) if self.first else h1
        h2 = self.u2(self.fc2(h1))
        h2 = back(h2, self.heads) if self.first else h2
        return self.head((h1 + h2).mean(1))


def _same(a, b):
    rename = {"u1": "u1", "u2": "u2"}
    assert [n.split(":")[0] for n in a.nodes] == [n.split(":")[0] for n in b.nodes] and a.nodes == b.nodes
    assert [e[:2] for e in a.edges] == [e[:2] for e in b.edges] and rename
    torch.testing.assert_close(torch.tensor([e[2] for e in a.edges]), torch.tensor([e[2] for e in b.edges]))
    for node in a.nodes:
        for key in ("effect", "z"):
            if key in a.node_stats[node]:
                assert a.node_stats[node][key] == pytest.approx(b.node_stats[node][key], rel=1e-9, abs=1e-12)
    assert a.meta["faithfulness"] == pytest.approx(b.meta["faithfulness"], rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("heads, options", [(None, {"unit_dim": -1}), (3, {"num_heads": 3}), (3, {"num_heads": {"u1": 3, "u2": 3}})])
def test_graph_over_neurons_and_heads_equals_the_units_first_network(heads, options):
    ids = torch.randint(0, 12, (24, 5), generator=torch.Generator().manual_seed(1))
    last, first = Seq(False, heads).double().eval(), Seq(True, heads).double().eval()
    got = causal_graph(last, ids, ["u1", "u2"], top_k=None, alpha=0.5, min_share=0.0, **options)
    want = causal_graph(first, ids, ["u1", "u2"], top_k=None, alpha=0.5, min_share=0.0)
    assert got.edges and len({n for n in got.nodes if n.startswith("u1")}) > 1  # a graph worth comparing
    assert all(int(n.split(":")[1]) < (heads or 6) for n in got.nodes if not n.startswith("output"))
    _same(got, want)
    kind = "heads" if heads else "neurons"
    given = {"unit_dim": None if heads else -1, "num_heads": heads}
    assert got.meta["unit_layouts"] == {"u1": given, "u2": given} and want.meta["unit_layouts"] == {}  # the figure reads them
    from lightning_causal.reporting.graph_figures import graph_figure

    titles = [t.get_text() for t in graph_figure(got.to_dict()).axes[0].texts if t.get_text().startswith("u")]
    assert titles == [f"u1\n({kind})", f"u2\n({kind})"]


def test_graph_refuses_positions_heads_on_projected_outputs_and_unknown_layers_in_options():
    ids = torch.randint(0, 12, (8, 5), generator=torch.Generator().manual_seed(1))
    model = Seq(False).eval()
    with pytest.raises(ValueError, match=r"'u1'.*features last.*`unit_dim=-1`"):
        causal_graph(model, ids, ["u1", "u2"])
    normed = nn.Sequential(nn.Embedding(12, 6), nn.Sequential(nn.Linear(6, 6), nn.LayerNorm(6)), nn.Flatten(), nn.Linear(30, 3))
    with pytest.raises(ValueError, match="`num_heads` on a module whose output is the heads"):
        causal_graph(normed.eval(), ids, ["1"], num_heads=3)  # a LayerNorm's output: heads already mixed
    with pytest.raises(ValueError, match="keys of argument `unit_dim`"):
        causal_graph(model, ids, ["u1"], unit_dim={"u9": -1})


def test_graph_audit_takes_unit_dim_per_layer():
    ids = torch.randint(0, 12, (16, 5), generator=torch.Generator().manual_seed(1))
    audit = CausalGraphAudit(["u1", "u2"], unit_dim={"u1": -1, "u2": -1}, stability_resamples=1)
    r = audit.run(Seq(False).eval(), Probe(ids))
    nodes = [row["node"] for row in r.tables["nodes"]]
    want = causal_graph(Seq(False).eval(), ids, ["u1", "u2"], unit_dim=-1)
    assert nodes and nodes == [n for n in want.nodes if not n.startswith("output")]
    assert "stability_resample" in r.scalars and "stability_noise" not in r.scalars  # token ids: no Gaussian noise
    with pytest.raises(ValueError, match="keys of argument `num_heads`"):
        CausalGraphAudit(["u1"], num_heads={"u2": 2})


def test_bert_graph_nodes_are_heads_and_neurons_with_their_unit_effects():
    from lightning_causal.causal import unit_effects
    from tests.helpers.bert import tiny_bert, token_batch

    model, (ids, mask) = tiny_bert(), token_batch(n=12)
    heads, mlp = "bert.encoder.layer.0.attention.self", "bert.encoder.layer.1.intermediate"
    afa = {"attention_mask": mask}
    g = causal_graph(model, ids, [heads, mlp], top_k=None, alpha=1.0, min_share=0.0, additional_forward_args=afa,
                     num_heads={heads: 4}, unit_dim={mlp: -1})
    units = {heads: unit_effects(model, ids, heads, num_heads=4, additional_forward_args=afa),
             mlp: unit_effects(model, ids, mlp, unit_dim=-1, additional_forward_args=afa)}
    assert units[heads].shape == (12, 4) and units[mlp].shape == (12, 64)
    nodes = [n for n in g.nodes if not n.startswith("output")]
    assert {n.rsplit(":", 1)[0] for n in nodes} == {heads, mlp} and g.edges
    for node in nodes:  # each node's effect is its unit's mean effect on the predicted class
        layer, u = node.rsplit(":", 1)
        assert g.node_stats[node]["effect"] == pytest.approx(float(units[layer][:, int(u)].mean()), rel=1e-6, abs=1e-9)


def test_graph_over_an_input_site_equals_the_graph_over_the_layer_that_feeds_it():
    """``u2``'s input is ``fc2``'s output and nothing else reads it: the same nodes, edges and weights."""
    ids = torch.randint(0, 12, (24, 5), generator=torch.Generator().manual_seed(1))
    model = Seq(False).double().eval()
    got = causal_graph(model, ids, ["u1", "u2:input"], top_k=None, alpha=0.5, min_share=0.0, unit_dim=-1)
    want = causal_graph(model, ids, ["u1", "fc2"], top_k=None, alpha=0.5, min_share=0.0, unit_dim=-1)
    assert any(n.startswith("u2:input:") for n in got.nodes) and got.edges

    def renamed(node):
        return node.replace("u2:input:", "fc2:")

    assert [renamed(n) for n in got.nodes] == want.nodes
    assert [(renamed(s), renamed(t)) for s, t, _ in got.edges] == [(s, t) for s, t, _ in want.edges]
    torch.testing.assert_close(torch.tensor([e[2] for e in got.edges]), torch.tensor([e[2] for e in want.edges]))
    assert got.meta["faithfulness"] == pytest.approx(want.meta["faithfulness"], rel=1e-9, abs=1e-12)
    assert not hasattr(model.u2, "lc_input_site") and not model.u2._forward_pre_hooks
    r = CausalGraphAudit(["u1", "u2:input"], unit_dim=-1, stability_resamples=0).run(model, Probe(ids))
    assert any(row["node"].startswith("u2:input:") for row in r.tables["nodes"])


def test_graph_faithfulness_recomputes_the_graph_s_own_value_over_neurons_heads_and_input_sites():
    """`graph_faithfulness` built its circuit over dimension 1 (token positions), whatever units
    the graph was over: -1.05 for -0.66 on neurons, an IndexError with fewer positions than units,
    and 'not attached' on an input site."""
    from lightning_causal.causal.structure.faithfulness import graph_faithfulness

    ids = torch.randint(0, 12, (24, 5), generator=torch.Generator().manual_seed(1))
    model = Seq(False, 3).double().eval()
    for layers, options in ((["u1", "u2"], {"unit_dim": -1}), (["u1", "u2"], {"num_heads": 3}),
                            (["u1", "u2:input"], {"unit_dim": -1})):
        g = causal_graph(model, ids, layers, top_k=2, alpha=0.5, min_share=0.0, ablation="zero", **options)
        assert g.edges
        again = graph_faithfulness(model, ids, g, ablation="zero")
        assert again["faithfulness"] == pytest.approx(g.meta["faithfulness"], rel=1e-9, abs=1e-12)
        explicit = graph_faithfulness(model, ids, g, ablation="zero", **options)
        assert explicit["faithfulness"] == pytest.approx(g.meta["faithfulness"], rel=1e-9, abs=1e-12)


def _with_and_without_the_cache(monkeypatch, model, ids, layers, **kwargs):
    """``causal_graph`` with its defaults (the layers whose runs built a prefix cache recorded with
    its path) and with the cache and the fx suffix switched off (full passes); checks they agree."""
    from lightning_causal.causal.engine import prefix_cache as engine
    from lightning_causal.causal.structure import graph_context

    paths = []

    def spy(*args, **kw):
        cache = engine.prefix_cache(*args, **kw)
        paths.append((args[2], cache.path))
        return cache

    def no_split(*_a, **_k):
        raise ValueError("forced: full forward passes")

    monkeypatch.setattr(graph_context, "prefix_cache", spy)
    fast = causal_graph(model, ids, layers, **kwargs)
    monkeypatch.setattr(graph_context, "prefix_cache", no_split)
    monkeypatch.setattr(graph_context, "suffix_module", lambda *a: None)
    slow = causal_graph(model, ids, layers, **kwargs)
    assert fast.nodes == slow.nodes and fast.edges and fast.edge_set() == slow.edge_set()
    torch.testing.assert_close(torch.tensor([st["effect"] for st in fast.edge_stats], dtype=torch.float64),
                               torch.tensor([st["effect"] for st in slow.edge_stats], dtype=torch.float64), rtol=0, atol=1e-10)
    assert fast.meta["faithfulness"] == pytest.approx(slow.meta["faithfulness"], abs=1e-10)
    return paths


def test_bert_graph_runs_the_hook_split_and_equals_full_passes(monkeypatch):
    """Path interventions from a Hugging Face layer run only the suffix after it (the prefix cache's
    hook split: nothing of BERT traces), with the same nodes, edges and weights as full passes."""
    from tests.helpers.bert import tiny_bert, token_batch

    model, (ids, mask) = tiny_bert(layers=3), token_batch(n=8)
    heads, mlp = "bert.encoder.layer.0.attention.self", "bert.encoder.layer.1.intermediate"
    paths = _with_and_without_the_cache(monkeypatch, model, ids, [heads, mlp], top_k=None, alpha=1.0, min_share=0.0,
                                        additional_forward_args={"attention_mask": mask}, num_heads={heads: 4},
                                        unit_dim={mlp: -1})
    # the 4 heads bring 4 rows per sample (full passes: the cache would not pay); the 64 neurons, many
    assert paths == [(mlp, "hooks")]


def test_a_graph_runs_from_hugging_face_attention_which_returns_a_tuple_through_the_cache(monkeypatch):
    """``attention.self`` returns a tuple (context, weights): the plain fx suffix cannot take it, the
    prefix cache cuts at element 0; as the target of 64 neurons' paths it brings enough rows."""
    from tests.helpers.bert import tiny_bert, token_batch

    model, (ids, mask) = tiny_bert(layers=2), token_batch(n=6)
    mlp, heads = "bert.encoder.layer.0.intermediate", "bert.encoder.layer.1.attention.self"
    paths = _with_and_without_the_cache(monkeypatch, model, ids, [mlp, heads], top_k=None, alpha=1.0, min_share=0.0,
                                        additional_forward_args={"attention_mask": mask}, num_heads={heads: 4},
                                        unit_dim={mlp: -1})
    assert (heads, "hooks") in paths
