"""FairnessAudit: counterfactual fairness gap, group fairness metrics and the hidden units that carry
the unfairness (CARE)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

from lightning_causal.audits.base import Audit, AuditResult, Probe, layer_names
from lightning_causal.audits.options import check_name_count, check_names
from lightning_causal.causal.engine.interventions import resolve_module
from lightning_causal.causal.engine.state import audit_mode
from lightning_causal.causal.scm.attribute_flip import resolve_counterfactual, sensitive_index
from lightning_causal.causal.scm.fairness import (
    carrier_unit_effects,
    counterfactual_fairness_gap,
    group_rates,
    probabilities,
)

__all__ = ["FairnessAudit"]


def _spread(rates: Tensor) -> float:
    ok = rates[~rates.isnan()]
    return float(ok.max() - ok.min()) if ok.numel() >= 2 else float("nan")


class FairnessAudit(Audit):
    r"""Counterfactual fairness of a tabular classifier on the probe (Kusner et al. 2017; CARE).

    Scalars: ``cf_gap`` = E|p_t(x_cf) − p_t(x)|, ``cf_gap_max``, ``cf_flip_rate`` (share of
    decisions that change), ``demographic_parity_difference`` and, when the probe has labels,
    ``equalized_odds_difference``, plus ``positive_rate/group_<g>`` (``tpr``, ``fpr``, ``accuracy``
    with labels) per sensitive group. Vectors: ``cf_delta`` (per-sample Δp, a histogram) and, per
    layer, ``carriers/<layer>`` = E|c_u| (:func:`~lightning_causal.causal.scm.fairness.carrier_unit_effects`:
    the part of Δ each unit carries); tables ``top_carriers/<layer>`` and ``groups``.

    Args:
        counterfactual: an ``AdditiveNoiseSCM``, an ``AttributeFlip`` or a callable ``x -> x_cf``.
        sensitive: the sensitive column (name or index; for a callable an index).
        layers: module names whose units are ranked as carriers (optional).
        top_k: carrier units per layer in the table.
        target: class whose probability is compared (``None`` = the predicted class).
        name: tag (default ``"fairness"``).
        feature_names: one name per column of the probe; names the sensitive column in the report.

    Raises:
        ValueError: ``sensitive`` not a column; bad ``layers``/``top_k``; at ``validate``/``run``:
            a probe that is not ``[N, D]``, or whose sensitive column is not binary.

    Examples:
        >>> import torch
        >>> from lightning_causal.causal import AttributeFlip
        >>> x = torch.tensor([[0.0, 1.0], [1.0, 2.0], [0.0, 3.0], [1.0, 0.0]])
        >>> r = FairnessAudit(AttributeFlip(0), 0).run(nn.Linear(2, 2), Probe(x))
        >>> sorted(k for k in r.scalars if k.startswith("cf_"))
        ['cf_flip_rate', 'cf_gap', 'cf_gap_max']
    """

    def __init__(
        self,
        counterfactual: object,
        sensitive: str | int | None,
        layers: Sequence[str] = (),
        top_k: int = 10,
        target: int | None = None,
        name: str | None = None,
        *,
        feature_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__(name)
        self.feature_names = check_names("feature_names", feature_names)
        self.flip = resolve_counterfactual(counterfactual, sensitive)
        self.column = sensitive_index(counterfactual, sensitive)
        layers = layer_names(layers, allow_empty=True)
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"Expected argument `top_k` to be a positive int but got {top_k!r}")
        self.counterfactual, self.sensitive = counterfactual, sensitive
        self.layers, self.top_k, self.target = list(layers), top_k, target

    def _inputs(self, probe: Probe) -> Tensor:
        x = probe.inputs
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] <= self.column:
            shape = list(x.shape) if isinstance(x, Tensor) else "a tuple"
            raise ValueError(f"Expected a tabular probe [N, D] with D > {self.column} (the sensitive column) but got {shape}")
        return x

    def validate(self, model: nn.Module, probe: Probe) -> None:
        for layer in self.layers:
            resolve_module(model, layer)
        check_name_count("feature_names", self.feature_names, self._inputs(probe).shape[1], "column")
        self.flip(self._inputs(probe)[:8])

    def run(self, model: nn.Module, probe: Probe, *, max_batch_size: int | None = None) -> AuditResult:
        x = self._inputs(probe)
        x_cf = self.flip(x)
        check_name_count("feature_names", self.feature_names, x.shape[1], "column")
        sensitive = self.feature_names[self.column] if self.feature_names is not None else str(self.sensitive)
        result = AuditResult(self.name, meta={"sensitive": sensitive, "n": x.shape[0]})
        if self.feature_names is not None:
            result.meta["feature_names"] = list(self.feature_names)
        gap = counterfactual_fairness_gap(model, x, x_cf, self.target, max_batch_size)
        result.scalars.update(cf_gap=gap["mean_abs"], cf_gap_max=gap["max_abs"], cf_flip_rate=gap["flip_rate"])
        result.vectors["cf_delta"] = gap["delta"]
        self._group_metrics(model, x, probe.labels, result)
        for layer in self.layers:
            self._carriers(model, x, x_cf, layer, max_batch_size, result)
        return result

    def _group_metrics(self, model: nn.Module, x: Tensor, labels: Tensor | None, result: AuditResult) -> None:
        with audit_mode(model):
            preds = probabilities(model(x)).argmax(1)
        multiclass = labels is not None and bool((labels > 1).any()) or bool((preds > 1).any())
        if multiclass:  # group metrics are for binary decisions; report positive = class 1
            preds = (preds == 1).long()
            labels = (labels == 1).long() if labels is not None else None
        rates = group_rates(preds, x[:, self.column], labels)
        result.scalars["demographic_parity_difference"] = _spread(rates["positive_rate"])
        if labels is not None:
            result.scalars["equalized_odds_difference"] = max(_spread(rates["tpr"]), _spread(rates["fpr"]))
        keys = [k for k in ("positive_rate", "tpr", "fpr", "accuracy") if k in rates]
        rows = []
        for i, g in enumerate(rates["groups"].tolist()):
            row = {"group": g, "count": int(rates["count"][i])}
            for k in keys:
                v = float(rates[k][i])
                row[k] = v
                if not math.isnan(v):
                    result.scalars[f"{k}/group_{g}"] = v
            rows.append(row)
        result.tables["groups"] = rows

    def _carriers(self, model: nn.Module, x: Tensor, x_cf: Tensor, layer: str, mbs: int | None, result: AuditResult) -> None:
        eff = carrier_unit_effects(model, x, x_cf, layer, self.target, mbs)
        imp, mean = eff.abs().mean(0), eff.mean(0)
        total = float(imp.sum())
        top = imp.topk(min(self.top_k, imp.numel()))
        result.vectors[f"carriers/{layer}"] = imp
        result.scalars[f"{layer}/top1_carrier_share"] = float(top.values[0]) / total if total > 0 else 0.0
        result.tables[f"top_carriers/{layer}"] = [
            {"unit": int(u), "carried": float(imp[u]), "mean_effect": float(mean[u]), "share": float(imp[u]) / total if total > 0 else 0.0}
            for u in top.indices.tolist()
        ]
