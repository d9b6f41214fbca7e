"""The causal graph's sweeps through the prefix cache's linear update (graph_linear_s32): where a chosen layer's output
is read by an ``nn.Linear`` (an MLP's next layer, also on the ``torch.fx`` path of models that trace), the sweep's rows
(one unit set to the baseline) and the patching pass's rows (one target unit patched) are answered as the layer's probe
output plus the changed unit's column, instead of its full product per row, as unit importance's rows are. Where no
linear layer reads the output (an activation, a normalisation, a depthwise convolution next), both run the model as before. The
graphs equal those of full forward passes (the reference path, float64: rounding only)."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn

from lightning_causal.causal.effects.unit_effects import unit_effects
from lightning_causal.causal.engine.batching import checked_chunks
from lightning_causal.causal.structure import graph_context
from lightning_causal.causal.structure.graph import causal_graph
from tests.causal.test_attribution_screen import TokenMixer


@pytest.fixture
def full_passes(monkeypatch):
    """A context in which every graph run is a full forward pass with hooks (no fx suffix, no prefix cache)."""
    def switched_off(*_a, **_k):
        raise ValueError("switched off: full forward passes")

    @contextlib.contextmanager
    def off():
        with monkeypatch.context() as patch:
            patch.setattr(graph_context, "prefix_cache", switched_off)
            patch.setattr(graph_context, "suffix_module", lambda *_a, **_k: None)
            yield

    return off


def _reference(full_passes, *args, **kwargs):
    with full_passes():
        return causal_graph(*args, **kwargs)


def _assert_same_graph(a, b):
    """The same nodes and edges; every statistic equal to float64 rounding."""
    da, db = a.to_dict(), b.to_dict()
    assert da["nodes"] == db["nodes"] or [n["id"] for n in da["nodes"]] == [n["id"] for n in db["nodes"]]
    assert [e[:2] for e in a.edges] == [e[:2] for e in b.edges] and a.edges
    for (_, _, wa), (_, _, wb) in zip(a.edges, b.edges):
        assert wa == pytest.approx(wb, rel=1e-9, abs=1e-12)
    for sa, sb in zip(a.edge_stats, b.edge_stats):
        assert sa == pytest.approx(sb, rel=1e-9, abs=1e-12)
    for node in a.node_stats:
        assert a.node_stats[node] == pytest.approx(b.node_stats[node], rel=1e-9, abs=1e-12)
    assert a.meta["faithfulness"] == pytest.approx(b.meta["faithfulness"], rel=1e-9, abs=1e-12, nan_ok=True)


def _mlp(*middle: nn.Module, width: int = 32) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, width), *middle, nn.Linear(width, 16), nn.ReLU(), nn.Linear(16, 3)).double().eval()


def _probe(n: int = 24, d: int = 6) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


class _ProductRows:
    """Counts the rows for which ``module`` computes its own product (its forward called), not the update."""

    def __init__(self, module: nn.Module, monkeypatch) -> None:
        self.rows, original = 0, module.forward

        def counting(x):
            self.rows += x.shape[0]
            return original(x)

        monkeypatch.setattr(module, "forward", counting)


def test_the_sweep_of_a_layer_read_by_a_linear_layer_no_longer_runs_its_product_per_row(updates, monkeypatch, full_passes):
    model, x = _mlp(nn.ReLU(), width=64), _probe()
    reference = _reference(full_passes, model, x, ["1", "3"], top_k=4, alpha=0.5)
    product = _ProductRows(model[2], monkeypatch)
    graph = causal_graph(model, x, ["1", "3"], top_k=4, alpha=0.5)
    moving = int((model[1](model[0](x)) != 0).sum())  # the sweep rows of layer '1' that run (a unit not at 0 already)
    assert moving > 700
    # before: each of them ran model[2]'s product besides the clean, trial and faithfulness passes (891 rows in all, 751
    # of them the sweep's); now only those passes and the prefix cache's own do (224 rows)
    assert product.rows < moving // 2
    assert updates["rows"] >= moving + 2  # answered by the update: the sweep of '1' and its two trial rows, and more
    _assert_same_graph(graph, reference)


def test_unit_importance_on_a_model_that_traces_uses_the_update_too(updates):
    model, x = _mlp(nn.ReLU()), _probe()
    fast, info = unit_effects(model, x, "1", return_info=True)
    full = unit_effects(model, x, "1", use_suffix=False)
    assert info.path == "fx" and info.linear_updates == ("'2'",)  # was (): the update ran on the hooks path only
    assert updates["rows"] == int((model[1](model[0](x)) != 0).sum()) + 2
    torch.testing.assert_close(fast, full, rtol=0, atol=1e-12)


@pytest.mark.parametrize("after", ["ReLU", "GELU", "BatchNorm1d", "LayerNorm"])
def test_a_layer_read_by_an_activation_or_a_normalisation_runs_the_model_as_before(after, updates, full_passes):
    module = {"ReLU": nn.ReLU(), "GELU": nn.GELU(), "BatchNorm1d": nn.BatchNorm1d(32), "LayerNorm": nn.LayerNorm(32)}[after]
    model, x = _mlp(module), _probe()
    if after == "BatchNorm1d":
        with torch.no_grad():
            module.running_mean.uniform_(-0.5, 0.5, generator=torch.Generator().manual_seed(2))
    # layer '0' is read by the activation or the normalisation (no update); '1' by the linear layer '2'
    graph = causal_graph(model, x, ["0", "3"], top_k=4, alpha=0.5)
    assert updates["rows"] > 0  # layer '3' (ReLU) is read by the linear layer '4'
    rows_of_3 = updates["rows"]
    updates["rows"] = 0
    only_0 = causal_graph(model, x, ["0"], top_k=4, alpha=0.5)
    assert updates["rows"] == 0 and rows_of_3 > 0
    _assert_same_graph(graph, _reference(full_passes, model, x, ["0", "3"], top_k=4, alpha=0.5))
    _assert_same_graph(only_0, _reference(full_passes, model, x, ["0"], top_k=4, alpha=0.5))


def test_a_layer_read_by_a_depthwise_convolution_runs_the_model_as_before(updates, full_passes, monkeypatch):
    # a convolution reading the layer takes the update since leftovers_s33a (tests/causal/test_conv_update.py); a
    # depthwise one (a channel is its group's whole input) does not. The graph's rule of leftovers_s34c keeps a
    # convolution this small on the plain suffix whatever the update answers: off, so that this checks the update's
    monkeypatch.setattr(graph_context, "CONV_CACHE_MIN_WORK", 0)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3)).double().eval()
    x = torch.randn(16, 1, 6, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    graph = causal_graph(model, x, ["1", "3"], top_k=4, alpha=0.5)
    assert updates["rows"] == 0  # channels read by a depthwise convolution: the layer's own product
    _assert_same_graph(graph, _reference(full_passes, model, x, ["1", "3"], top_k=4, alpha=0.5))


def test_features_last_of_token_states_use_the_update(updates, full_passes):
    # TokenMixer: [N, T, 8] hidden states; its Tanh's 8 features (unit_dim=-1) are read by the linear layer `proj`
    torch.manual_seed(0)
    model = TokenMixer().double().eval()
    x = torch.randn(20, 5, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    graph = causal_graph(model, x, ["act"], top_k=4, alpha=0.5, unit_dim=-1)
    assert updates["rows"] == 8 * 20 + 2  # every sweep row (no Tanh feature at 0) and the two trial rows
    _assert_same_graph(graph, _reference(full_passes, model, x, ["act"], top_k=4, alpha=0.5, unit_dim=-1))


class _BatchBranch(nn.Module):
    """``s = sum(g(h(x)))`` (``h``, ``g``: 8 x 8 identity layers; ``g`` reads ``h``'s output), times 10 where the batch's
    mean of ``g``'s unit 0 is above 0.5: a pass of stacked rows may take another branch than its rows alone (no fx
    trace: the prefix cache's hooks path, its linear update answering ``g``)."""

    def __init__(self) -> None:
        super().__init__()
        self.h, self.g = nn.Linear(8, 8, bias=False), nn.Linear(8, 8, bias=False)
        with torch.no_grad():
            self.h.weight.copy_(torch.eye(8))
            self.g.weight.copy_(torch.eye(8))

    def forward(self, x):
        z = self.g(self.h(x))
        s = z.sum(1, keepdim=True)
        return s * 10 if z[:, 0].mean() > 0.5 else s


def test_the_stacked_rows_check_still_refuses_a_pass_that_takes_another_branch(updates):
    # rows 0-3 zero unit 0 of samples 0-3, row 4 unit 1 of sample 0: a pass of 5 rows has a mean unit 0 of 0.4 (the
    # plain branch) where row 4 alone (unit 0 at 2) takes the x10 one
    model = _BatchBranch().double().eval()
    x = torch.ones(4, 8, dtype=torch.float64)
    x[:, 0] = torch.tensor([2.0, 1.0, 1.0, 2.0], dtype=torch.float64)
    with checked_chunks(lambda fn, idx, rows_of: fn(idx)):  # unchecked: the passes mix the branches silently
        causal_graph(model, x, ["h"], max_batch_size=5, alpha=1.0)
    assert updates["rows"] > 0
    with pytest.raises(ValueError, match=r"causal_graph stacks in one pass.*rows \[0, 4\] run alone"):
        causal_graph(model, x, ["h"], max_batch_size=5, alpha=1.0)
