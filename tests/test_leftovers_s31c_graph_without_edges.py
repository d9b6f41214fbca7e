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
        f"8 nodes and no edges: an output's edges are tested on its class's samples (48 in {len(counts)} classes, median "
        f"{statistics.median(counts):g}, {counts.count(1)} of one): use a larger probe, target=k or a looser test "
        f"(correction='none', a larger alpha); none of the {meta['candidates']} candidate edges (from nodes) has a p-value "
        f"of at most alpha=0.05 after the bh correction over {meta['tests']} edge tests (every unit of the source layers "
        "with a path, nodes or not) with a share of at least 0.05 (a class of one sample has no standard error)"]
    # the text card keeps a note's first 160 characters: the cause and the ways out are among them (review second_s31b:
    # the card read "... after the bh correction …", neither the samples per class nor a way out)
    card = markdown_summary(0, [result])
    assert (f"- causal_graph: 8 nodes and no edges: an output's edges are tested on its class's samples (48 in "
            f"{len(counts)} classes, median {statistics.median(counts):g}, {counts.count(1)} of one): use a larger probe, "
            "target=k or a looser test") in card


def test_one_explained_class_is_not_told_to_pass_target() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 10)).eval()
    x = torch.randn(6, 16, generator=torch.Generator().manual_seed(1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = CausalGraphAudit(["1"], stability_resamples=0, target=0).run(model, Probe(x))
    assert result.scalars["n_nodes"] == 3 and result.scalars["n_edges"] == 0
    meta = result.graphs["causal_graph"]["meta"]
    assert [n for n in result.meta["notes"] if "no edges" in n] == [
        f"3 nodes and no edges: none of the {meta['candidates']} candidate edges (from nodes) has a p-value of at most "
        f"alpha=0.05 after the bh correction over {meta['tests']} edge tests (every unit of the source layers with a "
        "path, nodes or not) with a share of at least 0.05. A larger probe or a looser test (correction='none', a larger "
        "alpha) can keep edges"]


def test_a_graph_with_edges_has_no_such_note() -> None:
    result, _ = _run(100, 128, 32)
    assert result.scalars["n_edges"] > 0
    assert not [n for n in result.meta.get("notes", []) if "no edges" in n]
