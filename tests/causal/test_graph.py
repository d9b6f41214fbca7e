import json
import math

import pytest
import torch
from torch import nn

from lightning_causal.causal.structure import graph_context
from lightning_causal.causal.structure.faithfulness import graph_faithfulness
from lightning_causal.causal.structure.graph import CausalGraph, causal_graph, graph_stability
from tests.helpers.models import DigitsCNN, all_hook_counts, seeded
from tests.helpers.planted import (
    Planted,
    Product,
    ResidualBlock,
    layered_planted,
    planted_inputs,
    planted_truth,
)


def _stats(g: CausalGraph) -> dict:
    return {(s, t): st for (s, t, _), st in zip(g.edges, g.edge_stats)}


@pytest.mark.parametrize(("leak", "max_batch_size"), [(0.001, None), (0.01, 7)])
def test_planted_graph_keeps_strong_edges_and_drops_leaks_and_dead_ends(leak, max_batch_size):
    model = Planted(leak=leak)
    x = planted_inputs()
    assert set(model(x).argmax(1).tolist()) == {0, 1}
    g = causal_graph(model, x, ["a", "b"], top_k=None, max_batch_size=max_batch_size)
    assert g.edge_set() == Planted.STRONG  # leaks a0 -> b2 and b1 -> output:1 dropped, no skip edge a -> output
    assert sorted(g.nodes) == ["a:0", "a:1", "a:2", "b:0", "b:1", "b:2", "output:0", "output:1"]
    st = _stats(g)
    cls0 = model(x).argmax(1) == 0
    assert st[("a:0", "b:0")]["effect"] == pytest.approx(float((2 * x[:, 0] * cls0).mean()), rel=1e-5)
    assert st[("b:2", "output:1")]["effect"] == pytest.approx(float(3 * (2 * x[~cls0, 2] + 2 * leak * x[~cls0, 0]).mean()), rel=1e-5)
    assert st[("b:2", "output:1")]["samples"] == float((~cls0).sum())
    assert all(s["p_adjusted"] >= s["p_value"] and s["p_adjusted"] <= 0.05 for s in st.values())
    assert g.meta["candidates"] == 6 + 2  # the pairs with a path: strong edges and the two leaks
    w = dict(((s, t), w) for s, t, w in g.edges)
    assert max(abs(v) for (s, t), v in w.items() if t.startswith("b")) == pytest.approx(1.0)


def test_a_noisy_unit_needs_enough_samples_to_be_a_node():
    model = Planted(noisy=1.0)  # b_4 moves the target logit by x_4 = 0.25 + 3 eps

    def inputs(n, seed):
        x = planted_inputs(n, seed)
        x[:, 4] = 0.25 + 3 * torch.randn(n, generator=torch.Generator().manual_seed(seed + 7))
        return x

    few, many = inputs(48, 3), inputs(4000, 2)
    assert "b:4" not in causal_graph(model, few, ["a", "b"], top_k=None).nodes
    g = causal_graph(model, many, ["a", "b"], top_k=None)
    assert "b:4" in g.nodes and ("a:4", "b:4") in g.edge_set()
    st = g.node_stats["b:4"]
    e = many[model(many).argmax(1) == st["class"], 4]  # the unit effect of b_4 on any target logit
    z = float(e.mean() / (e.std() / math.sqrt(len(e))))
    assert st["z"] == pytest.approx(z, rel=1e-4) and st["class_effect"] == pytest.approx(float(e.mean()), rel=1e-5)
    assert st["effect"] == pytest.approx(float(many[:, 4].mean()), rel=1e-4)
    small = causal_graph(model, few, ["a", "b"], top_k=None, alpha=1.0, min_share=0.0, alternative="two-sided")
    assert abs(small.node_stats["b:4"]["z"]) < 1.645


def test_literal_z_and_p_values_on_a_hand_case():
    model = nn.Sequential(nn.Linear(1, 1), nn.Linear(1, 2))
    with torch.no_grad():
        model[0].weight.fill_(1.0), model[0].bias.zero_()
        model[1].weight.copy_(torch.tensor([[2.0], [0.0]])), model[1].bias.zero_()
    x = torch.tensor([[1.0], [2.0], [3.0], [4.0]])  # effect of unit 0:0 on class 0: 2x = 2, 4, 6, 8
    g = causal_graph(model, x, ["0"], target=0)
    node, edge = g.node_stats["0:0"], g.edge_stats[0]
    for st in (node, edge):
        assert st["effect"] == pytest.approx(5.0)
        assert st["se"] == pytest.approx(1.2909944, rel=1e-6)  # sd(2, 4, 6, 8) / 2
        assert st["z"] == pytest.approx(3.8729833, rel=1e-6)
        # P(T_3 >= 3.873), Student's t with n - 1 = 3 degrees of freedom: 1/2 - (θ + sin θ cos θ)/π, θ = atan(z/√3)
        assert st["p_value"] == pytest.approx(0.01523315, rel=1e-5)
    assert edge["p_adjusted"] == pytest.approx(edge["p_value"])  # one candidate
    two = causal_graph(model, x, ["0"], target=0, alternative="two-sided")
    assert two.edge_stats[0]["p_value"] == pytest.approx(2 * 0.01523315, rel=1e-5)
    assert two.meta["z_critical"] == pytest.approx(1.959964, rel=1e-6) and g.meta["z_critical"] == pytest.approx(1.644854, rel=1e-6)


def test_path_specific_effects_differ_from_the_total_effect():
    x = planted_inputs(32)[:, :2]
    g = causal_graph(Product(), x, ["a", "b"], target=0, ablation="zero")
    x0sq = float((x[:, 0] ** 2).mean())
    assert g.edge_set() == {("a:0", "b:0"), ("a:0", "b:1"), ("b:0", "output:0"), ("b:1", "output:0")}
    assert g.node_stats["a:0"]["effect"] == pytest.approx(x0sq, rel=1e-5)  # total effect of a_0: x0^2
    st = _stats(g)
    # each path a_0 -> b_j -> out carries x0^2 on its own (the other factor keeps its clean value x0)
    assert st[("a:0", "b:0")]["effect"] == pytest.approx(x0sq, rel=1e-5)
    assert st[("a:0", "b:1")]["effect"] == pytest.approx(x0sq, rel=1e-5)
    assert "a:1" not in g.nodes and g.meta["faithfulness"] == pytest.approx(1.0)


def _no_split(*_args, **_kwargs):
    raise ValueError("forced: full forward passes")


@pytest.mark.parametrize("use_suffix", [True, False])
def test_residual_block_links_non_consecutive_layers(monkeypatch, use_suffix):
    if not use_suffix:
        monkeypatch.setattr(graph_context, "suffix_module", lambda *a: None)
        monkeypatch.setattr(graph_context, "prefix_cache", _no_split)
    model = ResidualBlock()
    x = planted_inputs(32)[:, :2]
    x0, x1 = x[:, 0], x[:, 1]
    g = causal_graph(model, x, ["a", "b"], target=0, ablation="zero")
    expected = {  # out_0 = (b_0 + h_0) + 2 (b_1 + h_1), b_0 = h_0, b_1 = 0.5 h_0 + h_1, h = x
        ("a:0", "b:0"): x0, ("a:0", "b:1"): x0, ("a:1", "b:1"): 2 * x1,
        ("a:0", "output:0"): x0, ("a:1", "output:0"): 2 * x1,  # the skip around b
        ("b:0", "output:0"): x0, ("b:1", "output:0"): x0 + 2 * x1,
    }
    assert g.edge_set() == set(expected)  # a_1 -> b_0 has no path: not even a candidate
    assert g.meta["candidates"] == 7
    st = _stats(g)
    for pair, value in expected.items():
        assert st[pair]["effect"] == pytest.approx(float(value.mean()), rel=1e-5)
    assert g.node_stats["a:0"]["effect"] == pytest.approx(float(3 * x0.mean()), rel=1e-5)  # total = paths (linear)
    assert g.meta["faithfulness"] == pytest.approx(1.0)
    no_skip = graph_faithfulness(model, x, g.without_edges({("a:0", "output:0")}), target=0, ablation="zero")
    assert no_skip["faithfulness"] == pytest.approx(float((2 * x0 + 4 * x1).mean() / (3 * x0 + 4 * x1).mean()), rel=1e-5)


def test_faithfulness_is_one_for_the_full_planted_graph_and_drops_without_an_edge():
    model, x = Planted(), planted_inputs()
    g = causal_graph(model, x, ["a", "b"])
    assert g.meta["faithfulness"] == pytest.approx(1.0, abs=1e-6)
    t = model(x).argmax(1)
    m = x.mean(0)
    # without a_0 -> b_0, b_0 = 2 E[x_0] (mean ablation): class-0 samples lose 2 (x_0 - E x_0)
    f, f_empty = torch.where(t == 0, 2 * x[:, 0] + 2 * x[:, 1], 6 * x[:, 2] - 2), torch.where(t == 0, 2 * m[0] + 2 * m[1], 6 * m[2] - 2)
    f_graph = torch.where(t == 0, 2 * m[0] + 2 * x[:, 1], 6 * x[:, 2] - 2)
    cut = graph_faithfulness(model, x, g.without_edges({("a:0", "b:0")}))
    assert cut["faithfulness"] == pytest.approx(float((f_graph - f_empty).mean() / (f - f_empty).mean()), rel=1e-5)
    for s, t_ in g.edge_set():  # every edge carries part of it (mean ablation: the sign may go either way)
        assert abs(graph_faithfulness(model, x, g.without_edges({(s, t_)}))["faithfulness"] - 1.0) > 1e-3
    empty = CausalGraph(["a", "b"], [], [])
    assert graph_faithfulness(model, x, empty)["faithfulness"] == pytest.approx(0.0, abs=1e-6)


def test_layered_planted_networks_are_recovered():
    model, strong = layered_planted([6, 8, 8], classes=3, seed=1)
    x = torch.rand(128, 6, generator=torch.Generator().manual_seed(0)) + 0.5
    classes = sorted(set(model(x).argmax(1).tolist()))
    g = causal_graph(model, x, ["layer0", "layer1", "layer2"], top_k=None)
    assert g.edge_set() == planted_truth(strong, classes)


def test_inhibiting_paths_need_the_two_sided_test():
    model = Planted()
    with torch.no_grad():
        model.out.weight[0, 1] = -0.5  # b_1 now lowers class 0's logit
        model.out.bias[0] = 3.0  # (both classes still occur)
    x = planted_inputs()
    greater = causal_graph(model, x, ["a", "b"])
    both = causal_graph(model, x, ["a", "b"], alternative="two-sided")
    assert "b:1" not in greater.nodes and ("b:1", "output:0") not in greater.edge_set()
    w = {(s, t): w for s, t, w in both.edges}
    assert both.node_stats["b:1"]["effect"] < 0 and w[("b:1", "output:0")] < 0 and w[("a:1", "b:1")] < 0
    assert w[("a:0", "b:0")] > 0


def test_top_k_caps_the_strongest_nodes():
    g = causal_graph(Planted(), planted_inputs(), ["a", "b"], top_k=1)
    assert g.nodes == ["a:2", "b:2", "output:0", "output:1"]  # a_2 -> b_2 -> out_1 (weight 6) is the strongest
    assert g.edge_set() == {("a:2", "b:2"), ("b:2", "output:1")}


def test_suffix_and_full_passes_agree_on_cnn(monkeypatch):

    model = seeded(DigitsCNN(channels=(6, 8), hidden=16), 3).eval()
    x = torch.rand(10, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    fast = causal_graph(model, x, ["conv1", "conv2", "fc1"], top_k=3, max_batch_size=13)
    monkeypatch.setattr(graph_context, "suffix_module", lambda *a: None)
    monkeypatch.setattr(graph_context, "prefix_cache", _no_split)
    slow = causal_graph(model, x, ["conv1", "conv2", "fc1"], top_k=3)
    assert fast.nodes == slow.nodes and fast.edges and fast.edge_set() == slow.edge_set()
    torch.testing.assert_close(torch.tensor([st["effect"] for st in fast.edge_stats]),
                               torch.tensor([st["effect"] for st in slow.edge_stats]), rtol=1e-4, atol=1e-5)
    assert fast.meta["faithfulness"] == pytest.approx(slow.meta["faithfulness"], rel=1e-4)
    assert all_hook_counts(model) == 0


def test_output_selection_and_forward_arguments():
    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = Planted()

        def forward(self, x, scale=None):
            return {"logits": self.inner(x * scale), "other": x}

    x = planted_inputs()
    scale = torch.ones(len(x), 1) * 1.0
    plain = causal_graph(Planted(), x, ["a", "b"])
    wrapped = causal_graph(Wrapped(), x, ["inner.a", "inner.b"], additional_forward_args={"scale": scale}, max_batch_size=11)
    assert {(s.replace("inner.", ""), t.replace("inner.", "")) for s, t in wrapped.edge_set()} == plain.edge_set()
    assert wrapped.meta["faithfulness"] == pytest.approx(plain.meta["faithfulness"], rel=1e-5)


def test_one_output_regression_graph_is_the_class_graph_of_that_column():
    class OneColumn(nn.Module):  # a regression head: Planted's logit 0 as the only output
        def __init__(self):
            super().__init__()
            self.inner = Planted()

        def forward(self, x):
            return self.inner(x)[:, :1]

    x = planted_inputs()
    cls0 = causal_graph(Planted(), x, ["a", "b"], target=0, top_k=None)
    reg = causal_graph(OneColumn(), x, ["inner.a", "inner.b"], top_k=None)
    assert [(s.replace("inner.", ""), t.replace("inner.", ""), w) for s, t, w in reg.edges] == cls0.edges
    assert reg.edge_set()  # not an empty graph equal to an empty one


def test_exports_round_trip():
    g = causal_graph(Planted(), planted_inputs(), ["a", "b"])
    d = json.loads(json.dumps(g.to_dict(), allow_nan=False))
    back = CausalGraph.from_dict(d)
    assert back.edges == g.edges and back.nodes == g.nodes and back.layers == ["a", "b"]
    assert back.edge_stats == g.edge_stats and back.node_stats == g.node_stats
    nxg = g.to_networkx()
    assert set(nxg.edges) == Planted.STRONG and nxg.nodes["a:0"]["layer"] == "a"
    dot = g.to_dot()
    assert dot.startswith("digraph") and '"a:0" -> "b:0"' in dot and dot.count("->") == len(Planted.STRONG)


def test_infinite_z_survives_json():
    g = CausalGraph(["a"], ["a:0", "output:0"], [("a:0", "output:0", 1.0)], edge_stats=[{"z": math.inf, "p_value": 0.0}],
                    meta={"faithfulness": math.nan})
    d = json.loads(json.dumps(g.to_dict(), allow_nan=False))
    assert CausalGraph.from_dict(d).edge_stats[0]["z"] == math.inf


def test_diff_lists_gained_and_lost_edges():
    model, x = Planted(), planted_inputs()
    before = causal_graph(model, x, ["a", "b"])
    with torch.no_grad():
        model.b.weight[1, 1] = 0.0
        model.b.weight[1, 4] = 2.0  # b_1 now listens to a_4 instead of a_1
    after = causal_graph(model, x, ["a", "b"])
    d = after.diff(before)
    assert d["lost"] == [("a:1", "b:1")] and d["gained"] == [("a:4", "b:1")]
    assert d["jaccard"] == pytest.approx(d["kept"] / (d["kept"] + 2))


def test_stability_is_one_for_a_planted_graph_and_uses_no_global_rng():
    model, x = Planted(), planted_inputs()
    state = torch.get_rng_state()
    s = graph_stability(model, x, ["a", "b"], resamples=2, noise=0.01)
    assert torch.equal(state, torch.get_rng_state())
    assert s == {"resample_jaccard": 1.0, "noise_jaccard": 1.0}


class _Tokens(nn.Module):
    """Token ids -> embedding -> Linear + ReLU per position -> mean -> logits."""

    def __init__(self) -> None:
        super().__init__()
        self.emb, self.fc, self.act, self.head = nn.Embedding(30, 6), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)

    def forward(self, ids):
        return self.head(self.act(self.fc(self.emb(ids))).mean(1))


def test_noise_stability_is_not_reported_for_token_ids():
    # Gaussian noise left token ids unchanged, so the "noisy" graph was the graph itself: 1.0 always
    from lightning_causal.audits import CausalGraphAudit, Probe

    model = seeded(_Tokens(), 0).eval()
    ids = torch.randint(0, 30, (24, 6), generator=torch.Generator().manual_seed(0))
    s = graph_stability(model, ids, ["act"], top_k=2, resamples=2, unit_dim={"act": -1})
    assert math.isnan(s["noise_jaccard"]) and 0.0 <= s["resample_jaccard"] <= 1.0
    r = CausalGraphAudit(["act"], top_k=2, stability_resamples=1, unit_dim=-1).run(model, Probe(ids))
    assert "stability_noise" not in r.scalars and "stability_resample" in r.scalars
    assert any("token ids" in note for note in r.meta["notes"])


def test_restores_modes_and_leaves_no_hooks():
    model = seeded(DigitsCNN(channels=(4, 4), hidden=8, dropout=0.5), 0).train()
    x = torch.rand(6, 1, 8, 8)
    causal_graph(model, x, ["conv1", "conv2"], top_k=2)
    assert model.training and model.dropout.training and all_hook_counts(model) == 0
    with pytest.raises(ValueError):
        causal_graph(model, x, ["conv1", "nope"], top_k=2)
    assert all_hook_counts(model) == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"layers": ["a", "zzz"]}, "Unknown module name 'zzz'"),
        ({"layers": []}, "Expected argument `layers`"),
        ({"layers": ["a", "a"]}, "distinct"),
        ({"layers": ["b", "a"]}, "forward order"),
        ({"top_k": 0}, "Expected argument `top_k` to be None or a positive int but got 0"),
        ({"alpha": 0.0}, "Expected argument `alpha`"),
        ({"alpha": 1.5}, "Expected argument `alpha`"),
        ({"min_share": -0.1}, "Expected argument `min_share`"),
        ({"correction": "bonferroni"}, "Expected argument `correction` to be one of"),
        ({"alternative": "less"}, "Expected argument `alternative` to be one of"),
        ({"baseline": "median"}, "Expected argument `baseline` to be 'zero', 'mean' or a finite number"),
        ({"ablation": math.nan}, "Expected argument `ablation`"),
    ],
)
def test_bad_arguments_fail_clearly(kwargs, match):
    args = {"layers": ["a", "b"]} | kwargs
    with pytest.raises(ValueError, match=match):
        causal_graph(Planted(), planted_inputs(8), **args)


def test_reserved_repeated_and_non_matrix_outputs_fail_clearly():
    model = nn.Sequential()
    model.add_module("output", nn.Linear(3, 2))
    with pytest.raises(ValueError, match="reserved"):
        causal_graph(model, torch.rand(4, 3), ["output"])
    grid = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 4), nn.Unflatten(1, (2, 2)))  # [N] is one column; [N, 2, 2] is not
    with pytest.raises(ValueError, match=r"returning \[N, outputs\].*\(4, 2, 2\)"):
        causal_graph(grid, torch.rand(4, 3), ["0"])
    shared = nn.Linear(3, 3)
    twice = nn.Sequential(shared, nn.ReLU(), shared, nn.Linear(3, 2))
    with pytest.raises(ValueError, match="run once per forward pass"):
        causal_graph(twice, torch.rand(4, 3), ["0"])
    with pytest.raises(TypeError, match="torch.nn.Module"):
        causal_graph(lambda x: x, torch.rand(4, 3), ["0"])


@pytest.mark.parametrize(("kwargs", "match"), [({"resamples": 0}, "resamples"), ({"noise": -1.0}, "noise"), ({"seed": -1}, "seed")])
def test_stability_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        graph_stability(Planted(), planted_inputs(8), ["a", "b"], **kwargs)


def test_undefined_faithfulness_is_a_float_nan_and_round_trips_through_json():
    # the full and the empty circuit give the same mean output (a read-out that ignores the layer's
    # units): faithfulness is undefined. It came back as the string 'nan' (and alpha=1's z_critical
    # as '-inf'), so `graph_faithfulness(...)["faithfulness"] > 0.9` raised TypeError
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2))
    with torch.no_grad():
        model[2].weight.zero_()
        model[2].bias.copy_(torch.tensor([1.0, 0.0]))
    x = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    g = causal_graph(model, x, ["1"], alpha=1.0, ablation="zero")
    faith = graph_faithfulness(model, x, CausalGraph(["1"], ["1:0", "output:0"], [("1:0", "output:0", 1.0)]))["faithfulness"]
    assert isinstance(faith, float) and math.isnan(faith)
    assert isinstance(g.meta["faithfulness"], float) and math.isnan(g.meta["faithfulness"])
    assert g.meta["z_critical"] == -math.inf
    back = CausalGraph.from_dict(json.loads(json.dumps(g.to_dict(), allow_nan=False)))
    assert math.isnan(back.meta["faithfulness"]) and back.meta["z_critical"] == -math.inf
