import json
import math

import pytest
import torch
from torch import nn

from lightning_causal.causal.structure import graph as graph_mod
from lightning_causal.causal.structure.graph import CausalGraph, causal_graph, graph_stability
from tests.helpers.models import DigitsCNN, all_hook_counts, seeded


class Planted(nn.Module):
    """x [N, 6] -> a (Linear 6->6) -> b (Linear 6->6) -> out (Linear 6->2), no nonlinearity needed.

    a = x (identity). b_0 = 2 a_0, b_1 = 2 a_1, b_2 = 2 a_2 + weak * a_0; b_3..5 = a_3..5 (+ `noisy` * a_3 into b_2).
    out_0 = b_0 + b_1, out_1 = 3 b_2; b_3..5 reach the outputs with weight 0.01.
    """

    def __init__(self, weak: float = 0.0, noisy: float = 0.0) -> None:
        super().__init__()
        self.a, self.b, self.out = nn.Linear(6, 6), nn.Linear(6, 6), nn.Linear(6, 2)
        wb = torch.zeros(6, 6)
        wb[0, 0] = wb[1, 1] = wb[2, 2] = 2.0
        wb[2, 0] = weak
        wb[2, 3] = noisy
        wb[3, 3] = wb[4, 4] = wb[5, 5] = 1.0
        wo = torch.zeros(2, 6)
        wo[0, 0] = wo[0, 1] = 1.0
        wo[1, 2] = 3.0
        wo[:, 3:] = 0.01
        with torch.no_grad():
            self.a.weight.copy_(torch.eye(6))
            self.b.weight.copy_(wb)
            self.out.weight.copy_(wo)
            for lin in (self.a, self.b, self.out):
                lin.bias.zero_()

    def forward(self, x):
        return self.out(self.b(self.a(x)))


def _inputs(n=64, seed=0):
    return torch.rand(n, 6, generator=torch.Generator().manual_seed(seed)) + 0.5


PLANTED = {
    ("a:0", "b:0"), ("a:1", "b:1"), ("a:2", "b:2"),
    ("b:0", "output:0"), ("b:1", "output:0"), ("b:2", "output:1"),
}


@pytest.mark.parametrize("max_batch_size", [None, 7])
def test_recovers_exactly_the_planted_edges(max_batch_size):
    model = Planted()
    x = _inputs()
    g = causal_graph(model, x, ["a", "b"], top_k=3, max_batch_size=max_batch_size)
    assert {t for t in model(x).argmax(1).tolist()} == {0, 1}  # both classes occur
    assert g.edge_set() == PLANTED
    assert sorted(g.nodes) == sorted(["a:0", "a:1", "a:2", "b:0", "b:1", "b:2", "output:0", "output:1"])
    w = {(s, t): w for s, t, w in g.edges}
    # hidden edges: raw = E|2 a_i|, normalised by the strongest (all three have the same weight 2)
    raw = {(s, t): st["raw"] for (s, t, _), st in zip(g.edges, g.edge_stats)}
    assert raw[("a:0", "b:0")] == pytest.approx(2 * float(x[:, 0].mean()), rel=1e-5)
    top = max(raw[("a:0", "b:0")], raw[("a:1", "b:1")], raw[("a:2", "b:2")])
    assert w[("a:1", "b:1")] == pytest.approx(raw[("a:1", "b:1")] / top, rel=1e-5)
    # output edges: the unit effect on the target logit, e.g. b_2 -> class 1 is 3 * b_2 = 6 x_2
    cls1 = model(x).argmax(1) == 1
    assert raw[("b:2", "output:1")] == pytest.approx(6 * float(x[cls1, 2].mean()), rel=1e-5)
    assert max(abs(v) for (s, t), v in w.items() if t.startswith("output")) == pytest.approx(1.0)
    assert all(v > 0 for v in w.values())  # every planted path is excitatory
    assert g.node_stats["b:2"]["importance"] == pytest.approx(float((6 * x[:, 2] * cls1).mean()), rel=1e-5)


def test_negative_wiring_gives_negative_sign():
    model = Planted()
    with torch.no_grad():
        model.b.weight[1, 1] = -2.0
        model.out.weight[0, 1] = -1.0  # keep the path to the output positive overall
    g = causal_graph(model, _inputs(), ["a", "b"], top_k=3)
    w = {(s, t): w for s, t, w in g.edges}
    assert w[("a:1", "b:1")] < 0
    assert w[("b:1", "output:0")] > 0


def test_significance_test_rejects_weak_noisy_edge_with_few_samples():
    # a_0 -> b_2 is a real but weak edge (0.1 a_0); the reference for b_2 (units outside the graph)
    # is noisy: a_3 -> b_2 with weight 0.25 and a_3 a half-normal input. A negative bias on class 1
    # keeps both classes (and so a_0, a_1, a_2 as the top units of `a`).
    model = Planted(weak=0.1, noisy=0.25)
    with torch.no_grad():
        model.out.bias[1] = -3.0

    def inputs(n, seed):
        x = _inputs(n, seed)
        x[:, 3] = torch.randn(n, generator=torch.Generator().manual_seed(seed + 100)).abs() * 1.25
        return x

    few = causal_graph(model, inputs(12, 1), ["a", "b"], top_k=3)
    many = causal_graph(model, inputs(4000, 2), ["a", "b"], top_k=3)
    assert few.nodes[:3] == many.nodes[:3] and set(few.nodes[:3]) == {"a:0", "a:1", "a:2"}
    assert ("a:0", "b:2") not in few.edge_set()
    assert ("a:0", "b:2") in many.edge_set()
    z_few = dict(zip([(s, t) for s, t, _ in few.edges], few.edge_stats))
    assert z_few[("a:2", "b:2")]["z"] > 1.65  # the strong edge passes with the same few samples
    # alpha = 1 keeps every candidate edge
    assert len(causal_graph(model, inputs(12, 1), ["a", "b"], top_k=3, alpha=1.0).edges) == 9 + 3 * len(set(model(inputs(12, 1)).argmax(1).tolist()))


def test_z_scores_and_p_values_match_a_reference():
    model = Planted(weak=0.1, noisy=0.25)
    with torch.no_grad():
        model.out.bias[1] = -3.0
    x = _inputs(40, 3)
    x[:, 3] = torch.randn(40, generator=torch.Generator().manual_seed(9)).abs()
    g = causal_graph(model, x, ["a", "b"], top_k=3, alpha=1.0)
    assert set(g.nodes[:3]) == {"a:0", "a:1", "a:2"}
    st = dict(zip([(s, t) for s, t, _ in g.edges], g.edge_stats))[("a:0", "b:2")]
    d = 0.1 * x[:, 0] - (0.25 * x[:, 3]) / 3  # m_ij(x) - mean over a_3, a_4, a_5 (only a_3 reaches b_2)
    z = float(d.mean() / (d.std() / math.sqrt(40)))
    assert st["z"] == pytest.approx(z, rel=1e-4)
    assert st["p_value"] == pytest.approx(0.5 * math.erfc(z / math.sqrt(2)), rel=1e-4)


def test_suffix_and_full_passes_agree_on_cnn(monkeypatch):
    model = seeded(DigitsCNN(channels=(6, 8), hidden=16), 3).eval()
    x = torch.rand(10, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    fast = causal_graph(model, x, ["conv1", "conv2"], top_k=3, max_batch_size=13)
    monkeypatch.setattr(graph_mod, "suffix_module", lambda *a: None)
    slow = causal_graph(model, x, ["conv1", "conv2"], top_k=3)
    assert fast.nodes == slow.nodes and fast.edge_set() == slow.edge_set()
    torch.testing.assert_close(torch.tensor([w for *_, w in fast.edges]), torch.tensor([w for *_, w in slow.edges]))
    assert all_hook_counts(model) == 0


def test_faithfulness_full_graph_is_one_and_partial_matches_hand_value():
    model = Planted()
    x = _inputs()
    g = causal_graph(model, x, ["a", "b"], top_k=6, target=0)
    assert g.meta["faithfulness"] == pytest.approx(1.0)
    g1 = causal_graph(model, x, ["b"], top_k=1, target=0)  # only b_0 (or b_1) kept: out_0 = 2 x_i
    kept = int(g1.nodes[0].split(":")[1])
    expected = float((2 * x[:, kept]).mean() / (2 * x[:, 0] + 2 * x[:, 1] + 0.01 * x[:, 3:].sum(1)).mean())
    assert g1.meta["faithfulness"] == pytest.approx(expected, rel=1e-5)


def test_exports_round_trip():
    model = Planted()
    g = causal_graph(model, _inputs(), ["a", "b"], top_k=3)
    d = json.loads(json.dumps(g.to_dict()))
    back = CausalGraph.from_dict(d)
    assert back.edges == g.edges and back.nodes == g.nodes and back.layers == ["a", "b"]
    assert back.edge_stats == g.edge_stats and back.node_stats == g.node_stats
    nxg = g.to_networkx()
    assert set(nxg.edges) == PLANTED and nxg.nodes["a:0"]["layer"] == "a"
    dot = g.to_dot()
    assert dot.startswith("digraph") and '"a:0" -> "b:0"' in dot and dot.count("->") == len(PLANTED)


def test_infinite_z_survives_json():
    g = CausalGraph(["a"], ["a:0", "output:0"], [("a:0", "output:0", 1.0)], edge_stats=[{"z": math.inf, "p_value": 0.0}])
    d = json.loads(json.dumps(g.to_dict(), allow_nan=False))
    assert CausalGraph.from_dict(d).edge_stats[0]["z"] == math.inf


def test_diff_lists_gained_and_lost_edges():
    model = Planted()
    x = _inputs()
    before = causal_graph(model, x, ["a", "b"], top_k=3)
    with torch.no_grad():
        model.b.weight[1, 1] = 0.0
        model.b.weight[1, 4] = 2.0  # b_1 now listens to a_4 instead of a_1
    after = causal_graph(model, x, ["a", "b"], top_k=3)
    d = after.diff(before)
    assert ("a:1", "b:1") in d["lost"] and ("a:4", "b:1") in d["gained"]
    assert d["jaccard"] == pytest.approx(d["kept"] / (d["kept"] + len(d["gained"]) + len(d["lost"])))


def test_stability_is_one_for_a_deterministic_planted_graph_and_uses_no_global_rng():
    model = Planted()
    state = torch.get_rng_state()
    s = graph_stability(model, _inputs(), ["a", "b"], top_k=3, resamples=2, noise=0.01)
    assert torch.equal(state, torch.get_rng_state())
    assert s == {"resample_jaccard": 1.0, "noise_jaccard": 1.0}


def test_restores_modes_and_leaves_no_hooks():
    model = seeded(DigitsCNN(channels=(4, 4), hidden=8, dropout=0.5), 0).train()
    x = torch.rand(6, 1, 8, 8)
    causal_graph(model, x, ["conv1", "conv2"], top_k=2)
    assert model.training and model.dropout.training and all_hook_counts(model) == 0
    with pytest.raises(ValueError):
        causal_graph(model, x, ["conv1", "nope"], top_k=2)
    assert all_hook_counts(model) == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"layers": ["a", "zzz"]}, ValueError, "Unknown module name 'zzz'"),
        ({"layers": []}, ValueError, "Expected argument `layers`"),
        ({"layers": ["a", "a"]}, ValueError, "distinct"),
        ({"layers": ["b", "a"]}, ValueError, "forward order"),
        ({"top_k": 0}, ValueError, "Expected argument `top_k` to be a positive int but got 0"),
        ({"alpha": 0.0}, ValueError, "Expected argument `alpha`"),
        ({"alpha": 1.5}, ValueError, "Expected argument `alpha`"),
    ],
)
def test_bad_arguments_fail_clearly(kwargs, error, match):
    args = {"layers": ["a", "b"], "top_k": 2} | kwargs
    with pytest.raises(error, match=match):
        causal_graph(Planted(), _inputs(8), **args)


def test_reserved_and_non_classifier_outputs_fail_clearly():
    model = nn.Sequential()
    model.add_module("output", nn.Linear(3, 2))
    with pytest.raises(ValueError, match="reserved"):
        causal_graph(model, torch.rand(4, 3), ["output"])
    reg = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 1))
    with pytest.raises(ValueError, match=r"classifier returning logits \[N, classes >= 2\].*\(4, 1\)"):
        causal_graph(reg, torch.rand(4, 3), ["0"])
    seg = nn.Sequential(nn.Conv2d(1, 2, 1))
    with pytest.raises(ValueError, match="classifier"):
        causal_graph(seg, torch.rand(4, 1, 3, 3), ["0"])
    with pytest.raises(TypeError, match="torch.nn.Module"):
        causal_graph(lambda x: x, torch.rand(4, 3), ["0"])


@pytest.mark.parametrize(("kwargs", "match"), [({"resamples": 0}, "resamples"), ({"noise": -1.0}, "noise"), ({"seed": -1}, "seed")])
def test_stability_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        graph_stability(Planted(), _inputs(8), ["a", "b"], **kwargs)
