"""CausalGraphAudit: the causal explanatory graph of chosen layers, its stability and its changes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from lightning_causal.audits.base import Audit, AuditResult, Probe, layer_names
from lightning_causal.causal.engine.interventions import resolve_module
from lightning_causal.causal.structure.graph import causal_graph, graph_stability
from lightning_causal.causal.structure.graph_data import CausalGraph

__all__ = ["CausalGraphAudit"]


def _positive_int(name: str, value: object, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"Expected argument `{name}` to be an int >= {minimum} but got {value!r}")


class CausalGraphAudit(Audit):
    """Causal explanatory graph of chosen layers (:func:`~lightning_causal.causal.structure.graph.causal_graph`).

    Reports the graph (``graphs["causal_graph"]``, drawn as layered columns), its edges with
    z-scores (table), ``faithfulness`` (share of the target logit the graph alone reproduces),
    ``n_edges`` and ``edge_density`` (kept / candidate edges), the stability of the edge set
    (``stability_resample`` and ``stability_noise``: Jaccard overlaps under probe resampling and
    input noise) and, from the second run on, the edges gained and lost since the previous run
    (``edge_changes`` table, ``edges_gained``, ``edges_lost``, ``edge_jaccard_previous``).

    Args:
        layers: module names in forward order.
        top_k: units per layer in the graph.
        alpha: one-sided significance level of the edge test.
        target: class to explain; ``None`` = the predicted class of each probe sample.
        stability_resamples: bootstrap / noise repetitions for the stability scalars (0 = skip;
            each costs two more graph constructions).
        noise: input noise for the stability, in standard deviations of the probe.
        seed: seed of the private generator of the stability resamples.
        name: tag of the audit (default ``"causal_graph"``).

    Examples:
        >>> import torch
        >>> from lightning_causal.models import MLP
        >>> r = CausalGraphAudit(["net.1", "net.3"], top_k=2, stability_resamples=0).run(MLP(4), Probe(torch.randn(16, 4)))
        >>> r.graphs["causal_graph"]["kind"], "faithfulness" in r.scalars
        ('causal_graph', True)
    """

    def __init__(
        self,
        layers: Sequence[str],
        top_k: int = 8,
        alpha: float = 0.05,
        target: int | None = None,
        stability_resamples: int = 2,
        noise: float = 0.05,
        seed: int = 0,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        layers = layer_names(layers)
        _positive_int("top_k", top_k)
        _positive_int("stability_resamples", stability_resamples, 0)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 < alpha <= 1.0:
            raise ValueError(f"Expected argument `alpha` to be a float in (0, 1] but got {alpha!r}")
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not noise >= 0:
            raise ValueError(f"Expected argument `noise` to be a non-negative float but got {noise!r}")
        self.layers, self.top_k, self.alpha, self.target = list(layers), top_k, float(alpha), target
        self.stability_resamples, self.noise, self.seed = stability_resamples, float(noise), seed
        self._previous: CausalGraph | None = None

    def validate(self, model: nn.Module, probe: Probe) -> None:
        for layer in self.layers:
            resolve_module(model, layer)

    def state_dict(self) -> dict[str, Any]:
        """The previous run's graph (``CausalGraph.to_dict()``: plain values), so that the edges
        gained and lost continue across a resume from a checkpoint."""
        return {} if self._previous is None else {"previous": self._previous.to_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        previous = state.get("previous")
        self._previous = None if previous is None else CausalGraph.from_dict(previous)

    def run(self, model: nn.Module, probe: Probe, *, max_batch_size: int | None = None) -> AuditResult:
        graph = causal_graph(model, probe.inputs, self.layers, self.top_k, self.target, self.alpha, max_batch_size)
        result = AuditResult(self.name, graphs={"causal_graph": graph.to_dict()})
        result.scalars["faithfulness"] = float(graph.meta["faithfulness"])
        result.scalars["n_edges"] = float(len(graph.edges))
        result.scalars["edge_density"] = len(graph.edges) / max(1, graph.meta["candidates"])
        if self.stability_resamples:
            stab = graph_stability(model, probe.inputs, self.layers, self.top_k, self.target, self.alpha,
                                   self.stability_resamples, self.noise, self.seed, max_batch_size, reference=graph)
            result.scalars["stability_resample"] = stab["resample_jaccard"]
            result.scalars["stability_noise"] = stab["noise_jaccard"]
        order = sorted(range(len(graph.edges)), key=lambda i: -abs(graph.edges[i][2]))
        result.tables["edges"] = [{"source": graph.edges[i][0], "target": graph.edges[i][1], "weight": graph.edges[i][2],
                                   "z": graph.edge_stats[i]["z"], "p_value": graph.edge_stats[i]["p_value"]} for i in order]
        if self._previous is not None:
            diff = graph.diff(self._previous)
            result.scalars.update(edges_gained=float(len(diff["gained"])), edges_lost=float(len(diff["lost"])),
                                  edge_jaccard_previous=diff["jaccard"])
            result.tables["edge_changes"] = [{"change": kind, "source": s, "target": t}
                                             for kind in ("gained", "lost") for s, t in diff[kind]]
        self._previous = graph
        result.meta.update(top_k=self.top_k, alpha=self.alpha, layers=self.layers)
        return result
