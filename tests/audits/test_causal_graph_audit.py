import json

import matplotlib.pyplot
import pytest
import torch
from matplotlib.patches import FancyArrowPatch

from lightning_causal.audits import CausalGraphAudit
from lightning_causal.audits.base import Probe
from lightning_causal.causal.structure.graph import causal_graph
from lightning_causal.reporting.graph_figures import graph_figure
from tests.helpers.models import DigitsCNN, all_hook_counts, seeded
from tests.helpers.planted import Planted, ResidualBlock, planted_inputs


def test_reports_graph_statistics_and_changes():
    model = Planted(leak=0.01)
    audit = CausalGraphAudit(["a", "b"], stability_resamples=1)
    probe = Probe(planted_inputs())
    r = audit.run(model, probe)
    json.dumps(r.to_dict(), allow_nan=False)
    g = r.graphs["causal_graph"]
    assert {(e["source"], e["target"]) for e in g["edges"]} == Planted.STRONG
    assert r.scalars["n_nodes"] == 6.0 and r.scalars["n_edges"] == 6.0
    assert r.scalars["edge_density"] == pytest.approx(6 / 8)  # two leak candidates dropped
    assert r.scalars["stability_resample"] == 1.0 and r.scalars["stability_noise"] == 1.0
    assert r.scalars["faithfulness"] == pytest.approx(causal_graph(model, probe.inputs, ["a", "b"]).meta["faithfulness"])
    assert [row["node"] for row in r.tables["nodes"]] == ["a:2", "a:0", "a:1", "b:2", "b:0", "b:1"]
    assert set(r.tables["nodes"][0]) == {"node", "effect", "class", "class_effect", "se", "z", "p_value", "share"}
    edges = r.tables["edges"]
    assert abs(edges[0]["weight"]) == 1.0 and {"effect", "se", "z", "p_value", "p_adjusted", "share"} <= set(edges[0])
    assert "edge_changes" not in r.tables and "edges_gained" not in r.scalars
    with torch.no_grad():
        model.b.weight[1, 1] = 0.0
        model.b.weight[1, 4] = 2.0
    r2 = audit.run(model, probe)
    changes = {(row["change"], row["source"], row["target"]) for row in r2.tables["edge_changes"]}
    assert changes == {("lost", "a:1", "b:1"), ("gained", "a:4", "b:1")}
    assert r2.scalars["edges_gained"] == 1.0 and r2.scalars["edges_lost"] == 1.0
    assert r2.scalars["edge_jaccard_previous"] == pytest.approx(5 / 7)


def test_options_reach_the_graph_and_the_state_round_trips():
    model, probe = Planted(), Probe(planted_inputs())
    audit = CausalGraphAudit(["a", "b"], top_k=1, min_share=0.5, correction="holm", alternative="two-sided",
                             stability_resamples=0, output=lambda out: out)
    r = audit.run(model, probe, max_batch_size=5)
    assert r.graphs["causal_graph"]["meta"]["correction"] == "holm" and r.meta["alternative"] == "two-sided"
    assert r.scalars["n_nodes"] == 2.0 and "stability_noise" not in r.scalars
    fresh = CausalGraphAudit(["a", "b"], top_k=1, stability_resamples=0)
    fresh.load_state_dict(json.loads(json.dumps(audit.state_dict())))
    assert fresh.run(model, probe).scalars["edge_jaccard_previous"] == 1.0


def test_leaves_no_trace():
    model = seeded(DigitsCNN(channels=(4, 6), hidden=8, dropout=0.2), 0).train()
    params = [p.detach().clone() for p in model.parameters()]
    x = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    state = torch.get_rng_state()
    CausalGraphAudit(["conv1", "conv2"], top_k=2, stability_resamples=1).run(model, Probe(x))
    assert torch.equal(state, torch.get_rng_state())
    assert model.training and model.dropout.training and all_hook_counts(model) == 0
    assert all(torch.equal(a, b) for a, b in zip(params, model.parameters()))
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"layers": []}, "Expected argument `layers`"),
        ({"top_k": 0}, "Expected argument `top_k` to be None or a positive int but got 0"),
        ({"alpha": 0}, "Expected argument `alpha`"),
        ({"min_share": 2.0}, "Expected argument `min_share`"),
        ({"correction": "fdr"}, "Expected argument `correction` to be one of"),
        ({"alternative": "less"}, "Expected argument `alternative`"),
        ({"ablation": "median"}, "Expected argument `ablation`"),
        ({"target": -1}, "Expected argument `target`"),
        ({"stability_resamples": -1}, "stability_resamples"),
        ({"noise": -0.1}, "noise"),
        ({"output": 1.5}, "Expected argument `output`"),
    ],
)
def test_bad_configuration(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CausalGraphAudit(**({"layers": ["a"]} | kwargs))


def test_validate_names_unknown_layers():
    with pytest.raises(ValueError, match="Unknown module name 'convx'"):
        CausalGraphAudit(["convx"]).validate(DigitsCNN(channels=(4, 6), hidden=8), Probe(torch.rand(2, 1, 8, 8)))


def test_figure_shows_edge_strength_sign_and_skips():
    model = Planted()
    with torch.no_grad():
        model.out.weight[0, 1] = -0.5
        model.out.bias[0] = 3.0
    r = CausalGraphAudit(["a", "b"], alternative="two-sided", stability_resamples=0).run(model, Probe(planted_inputs()))
    graph = r.graphs["causal_graph"]
    fig = graph_figure(graph)
    ax = fig.axes[0]
    assert len(ax.lines) == len(graph["edges"]) == 6
    colours = [line.get_color() for line in ax.lines]
    assert colours.count("tab:blue") == sum(e["weight"] < 0 for e in graph["edges"]) == 2
    widths = sorted(line.get_linewidth() for line in ax.lines)
    assert widths[-1] == pytest.approx(0.4 + 3.2) and widths[0] < widths[-1]  # |weight| 1 is the widest
    assert "6 nodes, 6 edges, faithfulness" in ax.get_title()
    matplotlib.pyplot.close(fig)
    skip = CausalGraphAudit(["a", "b"], ablation="zero", target=0, stability_resamples=0).run(
        ResidualBlock(), Probe(planted_inputs(16)[:, :2])).graphs["causal_graph"]
    fig = graph_figure(skip)
    arcs = [p for p in fig.axes[0].patches if isinstance(p, FancyArrowPatch)]
    assert len(arcs) == 2 and len(fig.axes[0].lines) == 5  # a_0, a_1 -> output around b
    matplotlib.pyplot.close(fig)


class _LengthsGRU(torch.nn.Module):
    """A packed GRU over [N, T, 2] read at each sample's last real step: ``forward(x, lengths)``."""

    def __init__(self):
        super().__init__()
        self.gru = torch.nn.GRU(2, 4, batch_first=True)
        self.head = torch.nn.Linear(4, 2)

    def forward(self, x, lengths):
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, h = self.gru(packed)
        return self.head(h[-1])


def test_graph_audit_runs_the_model_with_the_probes_forward_arguments():
    """The probe's forward arguments reach the model (they were dropped: a model of ``forward(x,
    lengths)`` failed with "missing 1 required positional argument", and a model whose mask is
    optional was explained without it); the graph is the one ``causal_graph`` builds with them."""
    model = seeded(_LengthsGRU()).eval()
    g = torch.Generator().manual_seed(0)
    x, lengths = torch.randn(6, 5, 2, generator=g), torch.tensor([5, 3, 2, 5, 4, 1])
    probe = Probe(x, additional_forward_args={"lengths": lengths})
    r = CausalGraphAudit(["head:input"], unit_dim=-1, top_k=2, stability_resamples=1).run(model, probe)
    want = causal_graph(model, x, ["head:input"], 2, unit_dim=-1, additional_forward_args={"lengths": lengths})
    assert [row["node"] for row in r.tables["nodes"]] == [n for n in want.nodes if n.startswith("head:input")]
    assert [row["effect"] for row in r.tables["nodes"]] == pytest.approx([want.node_stats[row["node"]]["effect"] for row in r.tables["nodes"]])
    assert r.scalars["faithfulness"] == pytest.approx(want.meta["faithfulness"], nan_ok=True)
    assert r.scalars["stability_resample"] >= 0.0


def test_an_undefined_faithfulness_says_why_and_what_to_pass():
    """A GRU regressor with a linear read-out: mean ablation of its hidden states leaves the mean
    output unchanged, so the faithfulness is NaN; the result and the callback's warning said only
    'NaN or infinite values in [faithfulness]'."""
    from lightning_causal.callbacks.audit import CausalAuditCallback

    class Reg(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gru, self.head = torch.nn.GRU(2, 4, batch_first=True), torch.nn.Linear(4, 1)

        def forward(self, x):
            return self.head(self.gru(x)[0][:, -1]).squeeze(-1)

    model = seeded(Reg()).eval()
    probe = Probe(torch.randn(8, 5, 2, generator=torch.Generator().manual_seed(0)))
    audit = CausalGraphAudit(["gru"], unit_dim=-1, top_k=2, stability_resamples=0)
    r = audit.run(model, probe)
    assert r.scalars["faithfulness"] != r.scalars["faithfulness"]  # NaN
    assert any("ablation='zero'" in note for note in r.meta["notes"])
    callback = CausalAuditCallback([audit])
    callback.probe = probe
    with pytest.warns(UserWarning, match=r"NaN or infinite values in \['faithfulness'\]; faithfulness undefined.*ablation='zero'"):
        callback._run_one(audit, model, 0)
    zero = CausalGraphAudit(["gru"], unit_dim=-1, top_k=2, stability_resamples=0, ablation="zero").run(model, probe)
    assert zero.scalars["faithfulness"] == zero.scalars["faithfulness"]
    # no faithfulness note; only the units that lower the regression's output (left out by the one-sided test) are noted
    assert all("alternative='two-sided'" in note for note in zero.meta.get("notes", []))
