"""Review of eb90cf3: CausalGraphAudit's small-shift note ran one more forward pass of the whole probe
at every audit to find the explained output's standard deviation, which the graph's clean pass already
holds. The audit now reads it from ``graph.meta["logit_full_sd"]``: its passes are those of
``causal_graph`` (plus the one first-row pass of its ``target=None`` check), and the note's figures are
the hand-computed ones."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from lightning_causal.audits import CausalGraphAudit, Probe
from lightning_causal.audits.logit_reads import outputs_judged
from lightning_causal.causal import causal_graph


def _model() -> nn.Module:
    """f(x) = x0 + 0.3 relu(x1), through three hidden units of layer "0" (a regression output)."""
    m = nn.Sequential(nn.Linear(2, 3, bias=False), nn.ReLU(), nn.Linear(3, 1, bias=False)).double()
    with torch.no_grad():
        m[0].weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]], dtype=torch.float64))
        m[2].weight.copy_(torch.tensor([[1.0, -1.0, 0.3]], dtype=torch.float64))
    return m.eval()


def _passes(model: nn.Module, fn) -> list[int]:
    rows: list[int] = []
    handle = model.register_forward_pre_hook(lambda _m, inp: rows.append(inp[0].shape[0]))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn()
    finally:
        handle.remove()
    return rows


def test_the_audit_runs_no_pass_beyond_the_graphs() -> None:
    model = _model()
    x = torch.randn(40, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    probe = Probe(x, 1.3 * x[:, :1])
    graph_rows = _passes(model, lambda: causal_graph(model, x, ["0"], target=0))
    with outputs_judged():  # the audit's own passes, not the judge's after a direct run (logit_reads.judge_outputs)
        audit_rows = _passes(model, lambda: CausalGraphAudit(["0"], stability_resamples=0, target=0).run(model, probe))
    assert sorted(audit_rows) == sorted(graph_rows)


def test_the_graphs_meta_holds_the_outputs_standard_deviation() -> None:
    model = _model()
    x = torch.randn(40, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    graph = causal_graph(model, x, ["0"], target=0)
    want = float((x[:, 0] + 0.3 * x[:, 1].clamp(min=0)).std())  # the output, by hand
    assert abs(graph.meta["logit_full_sd"] - want) < 1e-12
