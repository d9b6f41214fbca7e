"""graph_stability's bootstrap graphs sweep each drawn sample once (perf_graph_s35): a resample of n samples holds
about 0.63 n distinct ones, and the sweeps (a pass per unit and sample, then one per edge and sample) ran every copy
again. The copies' effects are now their first's: the graphs are the same, number for number, and fewer rows run."""

import pytest
import torch

from lightning_causal.causal.structure import graph as graph_module
from lightning_causal.causal.structure.graph import causal_graph, graph_stability
from tests.helpers.planted import Planted, ResidualBlock, planted_inputs


def _bootstrap_graphs(monkeypatch, model, x, layers, **options):
    """The graphs graph_stability builds on its resamples (and on its noisy copies), in order, and the draws."""
    built, graph = [], graph_module._graph

    def recording(*args, **kwargs):
        g = graph(*args, **kwargs)
        built.append((args[1], g))
        return g

    ref = causal_graph(model, x, layers, **options)
    monkeypatch.setattr(graph_module, "_graph", recording)
    graph_stability(model, x, layers, resamples=2, seed=3, reference=ref, **options)
    gen = torch.Generator().manual_seed(3)
    draws = [torch.randint(x.shape[0], (x.shape[0],), generator=gen) for _ in range(2)]
    return [built[0], built[2]], draws


@pytest.mark.parametrize("case", ["planted", "residual", "planted_two_sided_mean"])
def test_bootstrap_graphs_equal_the_graphs_of_the_resampled_probes(monkeypatch, case):
    """Planted (a_i -> b_i strong, a leak a_0 -> b_2 and b_1 -> out_1) and a residual block (a skip around b: the
    clamped sweep runs too): each bootstrap graph, nodes, edges and every statistic, equals causal_graph run on
    x[draw] outside graph_stability, where every copy is swept."""
    model = ResidualBlock() if case == "residual" else Planted(leak=0.05, noisy=0.02)
    x = planted_inputs(48, seed=1)[:, :2] if case == "residual" else planted_inputs(48, seed=1)
    options = {"alternative": "two-sided", "baseline": "mean"} if case == "planted_two_sided_mean" else {}
    boots, draws = _bootstrap_graphs(monkeypatch, model, x, ["a", "b"], top_k=None, **options)
    for (inputs, g), idx in zip(boots, draws):
        assert torch.equal(inputs[0], x[idx])
        assert idx.unique().numel() < idx.numel()  # copies to copy
        expected = causal_graph(model, x[idx], ["a", "b"], top_k=None, **options)
        assert g.to_dict() == expected.to_dict()
    if case == "planted":  # the known structure, found on the resample too
        assert {("a:0", "b:0"), ("a:1", "b:1"), ("a:2", "b:2")} <= {(s, t) for s, t, _ in boots[0][1].edges}


def _rows_through(model, fn):
    rows = []
    handle = model.b.register_forward_hook(lambda _m, _i, out: rows.append(out.shape[0]))
    try:
        fn()
    finally:
        handle.remove()
    return sum(rows)


def test_bootstrap_graph_sweeps_each_drawn_sample_once():
    """Rows through layer b in graph_stability (one resample, one noisy copy) against the two graphs built by hand on
    the same draws, where every copy runs: the resample's sweeps now run its distinct samples only (32 of 48 here),
    and its rows fall by more than a tenth (before: the very same rows)."""
    model, x = Planted(leak=0.05), planted_inputs(48, seed=1)
    ref = causal_graph(model, x, ["a", "b"])
    stability = _rows_through(model, lambda: graph_stability(model, x, ["a", "b"], resamples=1, seed=3, reference=ref))
    gen = torch.Generator().manual_seed(3)
    idx = torch.randint(48, (48,), generator=gen)
    noisy = graph_module._jitter((x,), 0.05, gen, (None,))
    assert idx.unique().numel() == 32
    resample = _rows_through(model, lambda: causal_graph(model, x[idx], ["a", "b"]))
    noise = _rows_through(model, lambda: causal_graph(model, noisy, ["a", "b"]))
    # before: stability == resample + noise, 1,394 rows (every copy swept); now the resample's graph runs 601 of its 697
    # (its clean, faithfulness and check passes still run every row)
    assert stability - noise <= 0.9 * resample


class _Noisy(Planted):
    """Planted with noise drawn in its forward (eval mode too): a copy of a sample draws other numbers than its first."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.b(self.a(x))
        return self.out(h + 1e-3 * torch.randn_like(h))


def test_a_model_that_draws_noise_sweeps_every_copy():
    """A copy's effects are its first's only where the passes are the same function of the sample: a model that draws
    noise runs every row of a resample named as graph_stability names it, as causal_graph on the resampled probe does
    (from the same global random state: the same rows and the same graph)."""
    model, x = _Noisy(leak=0.05), planted_inputs(48, seed=1)
    idx = torch.randint(48, (48,), generator=torch.Generator().manual_seed(3))
    counted = []
    for named in (False, True):
        torch.manual_seed(0)
        with pytest.warns(UserWarning):
            graphs, copies = [], graph_module._copies_of(idx) if named else None
            counted.append(_rows_through(model, lambda out=graphs, copies=copies: out.append(
                graph_module._graph(model, x[idx], ["a", "b"], copies=copies))))
        counted.append(graphs[0].to_dict())
    assert counted[0] == counted[2] and counted[1] == counted[3]
