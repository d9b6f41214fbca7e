"""UnitImportanceAudit: counterfactual importance of each unit of chosen layers."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from lightning_causal.audits.base import Audit, AuditResult, Probe, layer_names
from lightning_causal.audits.options import check_target
from lightning_causal.causal.effects.unit_effects import check_interventions, unit_effects
from lightning_causal.causal.engine.checks import check_int
from lightning_causal.causal.engine.forward import OutputSpec
from lightning_causal.causal.engine.interventions import Intervention, resolve_module

__all__ = ["UnitImportanceAudit"]


class UnitImportanceAudit(Audit):
    """Counterfactual importance of conv filters / neurons (Debbi 2021; CARE).

    For each layer, ``importance_u = E_x |f_t(x) − f_t(x | do(h_u := a))|`` over the probe, with
    ``a`` given by ``intervention`` (default zero). Reports the importance vector per layer
    (histograms, bar figures, drift), the top-k units and the share of the top-k in the total.

    Args:
        layers: module names from ``model.named_modules()``.
        top_k: number of top units per layer in the table.
        intervention: the do-intervention (default ``Zero()``; a list for a CARE do-grid).
        target: class to explain; ``None`` = the predicted class.
        output: which tensor of the model's return value is explained (see :class:`Audit`).
        name: tag of the audit (default ``"unit_importance"``).

    Examples:
        >>> import torch
        >>> from lightning_causal.models import MLP
        >>> r = UnitImportanceAudit(["net.1"], top_k=3).run(MLP(4), Probe(torch.randn(8, 4)))
        >>> r.vectors["importance/net.1"].shape, len(r.tables["top_units/net.1"])
        (torch.Size([32]), 3)
    """

    def __init__(
        self,
        layers: Sequence[str],
        top_k: int = 10,
        intervention: Intervention | Sequence[Intervention] | None = None,
        *,
        target: int | None = None,
        output: OutputSpec = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name, output=output)
        layers = layer_names(layers)
        check_int("top_k", top_k, minimum=1)
        if intervention is not None:
            check_interventions(intervention)
        self.layers, self.top_k, self.intervention, self.target = list(layers), top_k, intervention, check_target(target)

    def validate(self, model: nn.Module, probe: Probe) -> None:
        for layer in self.layers:
            resolve_module(model, layer)

    def run(self, model: nn.Module, probe: Probe, *, max_batch_size: int | None = None) -> AuditResult:
        result = AuditResult(self.name)
        for layer in self.layers:
            eff = unit_effects(model, probe.inputs, layer, self.intervention, target=self.target, max_batch_size=max_batch_size,
                               **self.model_options(probe))
            imp, mean = eff.abs().mean(0), eff.mean(0)
            k = min(self.top_k, imp.numel())
            top = imp.topk(k)
            total = float(imp.sum())
            result.vectors[f"importance/{layer}"] = imp
            result.scalars[f"{layer}/top1_importance"] = float(top.values[0])
            result.scalars[f"{layer}/top{k}_share"] = float(top.values.sum()) / total if total > 0 else 0.0
            result.tables[f"top_units/{layer}"] = [
                {"unit": int(u), "importance": float(imp[u]), "mean_effect": float(mean[u])} for u in top.indices.tolist()
            ]
        return result
