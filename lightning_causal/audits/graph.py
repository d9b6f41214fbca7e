"""Structural audits: the layer causal map and counterfactual explanations (the causal graph's
audit is in :mod:`lightning_causal.audits.causal_graph`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from lightning_causal.audits.base import Audit, AuditResult, Probe
from lightning_causal.causal.engine.groups import check_feature_mask, make_feature_mask
from lightning_causal.causal.engine.interventions import resolve_module
from lightning_causal.causal.engine.state import audit_mode
from lightning_causal.causal.structure.counterfactuals import counterfactual_explanation
from lightning_causal.causal.structure.layer_map import layer_causal_map

__all__ = ["LayerMapAudit", "CounterfactualAudit"]


def _positive_int(name: str, value: object, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"Expected argument `{name}` to be an int >= {minimum} but got {value!r}")


def _image_mask(x: Tensor, feature_mask: Tensor | None, patch_size: int | None) -> Tensor:
    if patch_size is not None and x.dim() not in (3, 4):
        raise ValueError(f"`patch_size` needs image inputs [N, C, H, W] or [N, H, W] but got shape {list(x.shape)}")
    mask = make_feature_mask(x.shape[1:], feature_mask, patch_size)
    return (mask.unsqueeze(0) if mask.dim() == x.dim() - 1 else mask).to(x.device)


class LayerMapAudit(Audit):
    """TRACER's layer causal map (:func:`~lightning_causal.causal.structure.layer_map.layer_causal_map`).

    Reports the map (``graphs["layer_map"]``: CKA matrix and merged nodes), ``n_nodes`` (causal
    nodes after merging), ``mean_adjacent_cka``, the relative response of every layer (vector
    ``layer_response``, compared across epochs as drift) and a table of the nodes.

    Args:
        feature_mask: integer group ids broadcastable to one input ``[1, ...]``.
        patch_size: square patches for image inputs (the default groups are single elements).
        layers: module names; default: every leaf module with parameters.
        threshold: CKA merge threshold.
        baseline: the input intervention value.
        target: class whose logit gives the output effects; ``None`` = predicted.
        max_rows: intervention rows entering the CKA.
        name: tag of the audit (default ``"layer_map"``).

    Examples:
        >>> from lightning_causal.models import MLP
        >>> r = LayerMapAudit().run(MLP(4), Probe(torch.randn(8, 4)))
        >>> r.graphs["layer_map"]["kind"], r.vectors["layer_response"].shape
        ('layer_map', torch.Size([3]))
    """

    def __init__(
        self,
        feature_mask: Tensor | None = None,
        patch_size: int | None = None,
        layers: Sequence[str] | None = None,
        threshold: float = 0.9,
        baseline: float | Tensor = 0.0,
        target: int | None = None,
        max_rows: int | None = 1024,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        if feature_mask is not None and patch_size is not None:
            raise ValueError("Expected at most one of `feature_mask` and `patch_size` but got both")
        if patch_size is not None:
            _positive_int("patch_size", patch_size)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
            raise ValueError(f"Expected argument `threshold` to be a float in [0, 1] but got {threshold!r}")
        if layers is not None and (isinstance(layers, str) or not layers or not all(isinstance(n, str) for n in layers)):
            raise ValueError(f"Expected argument `layers` to be None or a non-empty list of module names but got {layers!r}")
        self.feature_mask, self.patch_size, self.layers, self.threshold = feature_mask, patch_size, layers, float(threshold)
        self.baseline, self.target, self.max_rows = baseline, target, max_rows

    def validate(self, model: nn.Module, probe: Probe) -> None:
        if isinstance(probe.inputs, tuple):
            raise ValueError("LayerMapAudit explains single-tensor inputs; got a tuple probe")
        check_feature_mask((probe.first,), _image_mask(probe.first, self.feature_mask, self.patch_size))
        for layer in self.layers or ():
            resolve_module(model, layer)

    def run(self, model: nn.Module, probe: Probe, *, max_batch_size: int | None = None) -> AuditResult:
        x = probe.first
        lm = layer_causal_map(model, x, _image_mask(x, self.feature_mask, self.patch_size), self.layers, self.threshold,
                              self.baseline, self.target, max_batch_size, self.max_rows)
        result = AuditResult(self.name, graphs={"layer_map": lm.to_dict()})
        hidden = [k for k, v in lm.nodes.items() if v]
        adjacent = [float(lm.cka[i, i + 1]) for i in range(len(lm.layers) - 1)]
        result.scalars["n_nodes"] = float(len(hidden))
        result.scalars["n_layers"] = float(len(lm.layers))
        if adjacent:
            result.scalars["mean_adjacent_cka"] = sum(adjacent) / len(adjacent)
        result.scalars["output_response"] = float(lm.meta["output_response"])
        result.vectors["layer_response"] = lm.response.float()
        index = {layer: i for i, layer in enumerate(lm.layers)}
        result.tables["nodes"] = [{"node": k, "layers": len(v), "response": float(lm.response[index[v[0]]])}
                                  for k, v in lm.nodes.items() if v]
        return result


def _panel(img: Tensor, lo: float, hi: float) -> Tensor:
    return ((img - lo) / (hi - lo if hi > lo else 1.0)).clamp(0, 1)


def _triptych(x: Tensor, cf: Tensor) -> Tensor:
    """``[M, C, H, 3W + 2]`` images: input | counterfactual | difference (0.5 = unchanged)."""
    if x.dim() == 3:
        x, cf = x.unsqueeze(1), cf.unsqueeze(1)
    rows = []
    for a, b in zip(x.float().cpu(), cf.float().cpu()):
        lo, hi = float(torch.minimum(a, b).min()), float(torch.maximum(a, b).max())
        d = b - a
        scale = float(d.abs().max()) or 1.0
        gap = torch.ones(a.shape[0], a.shape[1], 1)
        rows.append(torch.cat([_panel(a, lo, hi), gap, _panel(b, lo, hi), gap, 0.5 + 0.5 * d / scale], dim=2))
    return torch.stack(rows)


class CounterfactualAudit(Audit):
    """Contrastive explanations of the probe's misclassified samples (TRACER; Wachter et al. 2017).

    For up to ``max_samples`` misclassified probe samples, the smallest change that makes the
    model predict the true label (:func:`~lightning_causal.causal.structure.counterfactuals.counterfactual_explanation`).
    Reports ``misclassified_rate``, ``explained``, ``success_rate`` and, over the successes,
    ``mean_l1``, ``mean_l2`` and ``mean_sparsity``; a table per sample; for images, one picture
    per sample: input | counterfactual | difference. Needs probe labels.

    Args:
        max_samples: misclassified samples explained (the first ones of the probe).
        l1: L1 proximity weight (see ``counterfactual_explanation``).
        l2: squared L2 proximity weight.
        steps: optimisation steps.
        lr: Adam learning rate.
        bounds: optional ``(low, high)`` input bounds.
        mask: optional mask of mutable features.
        name: tag of the audit (default ``"counterfactual"``).

    Examples:
        >>> from lightning_causal.models import MLP
        >>> x = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
        >>> r = CounterfactualAudit(max_samples=4, steps=20).run(MLP(4), Probe(x, torch.zeros(16, dtype=torch.long)))
        >>> sorted(k for k in r.scalars if k in ("explained", "misclassified_rate"))
        ['explained', 'misclassified_rate']
    """

    def __init__(
        self,
        max_samples: int = 16,
        l1: float = 0.1,
        l2: float = 0.01,
        steps: int = 300,
        lr: float = 0.01,
        bounds: tuple | None = None,
        mask: Tensor | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        _positive_int("max_samples", max_samples)
        _positive_int("steps", steps)
        for arg, v in (("l1", l1), ("l2", l2), ("lr", lr)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or (arg == "lr" and v == 0):
                raise ValueError(f"Expected argument `{arg}` to be a {'positive' if arg == 'lr' else 'non-negative'} number but got {v!r}")
        self.max_samples, self.l1, self.l2, self.steps, self.lr = max_samples, float(l1), float(l2), steps, float(lr)
        self.bounds, self.mask = bounds, mask

    def validate(self, model: nn.Module, probe: Probe) -> None:
        if probe.labels is None:
            raise ValueError("CounterfactualAudit needs probe labels (the true classes to explain towards); got none")
        if isinstance(probe.inputs, tuple):
            raise ValueError("CounterfactualAudit explains single-tensor inputs; got a tuple probe")

    def run(self, model: nn.Module, probe: Probe, *, max_batch_size: int | None = None) -> AuditResult:
        self.validate(model, probe)
        x, y = probe.first, probe.labels.to(probe.first.device)
        with audit_mode(model):
            pred = model(x).argmax(1)
        wrong = (pred != y).nonzero().flatten()
        result = AuditResult(self.name)
        result.scalars["misclassified_rate"] = float(wrong.numel()) / x.shape[0]
        idx = wrong[: self.max_samples]
        result.scalars["explained"] = float(idx.numel())
        if idx.numel() == 0:
            return result
        cf = counterfactual_explanation(model, x[idx], y[idx], self.l1, self.l2, self.mask, self.bounds, self.steps, self.lr)
        summary = cf.summary()
        result.scalars["success_rate"] = summary["success_rate"]
        if cf.success.any():
            result.scalars.update(mean_l1=summary["l1"], mean_l2=summary["l2"], mean_sparsity=summary["sparsity"])
        result.tables["counterfactuals"] = [
            {"index": int(i), "label": int(y[i]), "predicted": int(pred[i]), "counterfactual_predicted": int(cf.predicted[j]),
             "success": bool(cf.success[j]), "l1": float(cf.l1[j]), "l2": float(cf.l2[j]), "sparsity": float(cf.sparsity[j])}
            for j, i in enumerate(idx.tolist())
        ]
        if x.dim() in (3, 4):
            result.images["counterfactuals"] = _triptych(x[idx], cf.counterfactuals)
        elif x.dim() == 2:  # tabular: the largest changes, by column
            for row, d in zip(result.tables["counterfactuals"], cf.delta):
                top = d.abs().topk(min(3, d.numel())).indices.tolist()
                row["changes"] = ", ".join(f"x{c}: {float(d[c]):+.3g}" for c in top if d[c] != 0)
        return result
