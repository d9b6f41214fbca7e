"""A causal graph of many explained classes on a small probe (a 100-class MLP on 128 samples: 8 nodes, 0 edges,
"faithfulness 0.00") had no word on why it has no edges: the edge tests are corrected over every unit's edge tests,
and the edges into an explained class's output are tested on the samples explained as that class, a median of 2 a
class there (leftovers_s31c). A note on the card and in the report now names the tests, the correction, alpha and the
samples per explained class."""

from __future__ import annotations

import statistics
import warnings

import torch
from torch import nn

from lightning_causal import CausalGraphAudit
from lightning_causal.audits import Probe
from lightning_causal.reporting import markdown_summary


def _run(classes: int, samples: int, hidden: int):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, hidden), nn.ReLU(), nn.Linear(hidden, classes)).eval()
    x = torch.randn(samples, 16, generator=torch.Generator().manual_seed(1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = CausalGraphAudit(["1"], stability_resamples=0).run(model, Probe(x))
    with torch.no_grad():
        counts = torch.bincount(model(x).argmax(1))
    return result, counts[counts > 0].tolist()


def test_a_graph_of_nodes_without_edges_says_why() -> None:
    result, counts = _run(40, 48, 16)  # 40 classes, 48 samples
    assert result.scalars["n_nodes"] == 8 and result.scalars["n_edges"] == 0
    meta = result.graphs["causal_graph"]["meta"]
    notes = [n for n in result.meta.get("notes", []) if "no edges" in n]
    assert notes == [
        f"CausalGraphAudit 'causal_graph': 8 nodes and no edges: none of the {meta['candidates']} candidate edges (from "
        f"nodes) has a p-value of at most alpha=0.05 after the bh correction over {meta['tests']} edge tests (every unit "
        "of the source layers with a path, nodes or not) with a share of at least 0.05; the edges into the outputs are "
        f"tested per explained class, on the samples explained as it: the 48 samples are explained as {len(counts)} "
        f"classes, a median of {statistics.median(counts):g} a class ({counts.count(1)} of one sample, which has no "
        "standard error). A larger probe (more samples per explained class), one explained class for every sample "
        "(target=) or a looser test (correction='none', a larger alpha) can keep edges"]
    assert "8 nodes and no edges" in markdown_summary(0, [result])  # on the card


def test_a_graph_with_edges_has_no_such_note() -> None:
    result, _ = _run(100, 128, 32)
    assert result.scalars["n_edges"] > 0
    assert not [n for n in result.meta.get("notes", []) if "no edges" in n]
