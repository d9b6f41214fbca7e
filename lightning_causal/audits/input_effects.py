"""InputEffectAudit: per-sample input interventions, effect maps, ACE summary, top groups."""

from __future__ import annotations

from torch import Tensor, nn

from lightning_causal.audits.base import Audit, AuditResult, Probe
from lightning_causal.causal.effects.input_effects import average_causal_effect, input_effects
from lightning_causal.causal.engine.groups import (
    broadcast_groups,
    check_feature_mask,
    make_feature_mask,
)

__all__ = ["InputEffectAudit"]


class InputEffectAudit(Audit):
    """Interventions on input feature groups: δ_g(x) = f_t(x) − f_t(x | do(x_g := b)).

    Groups come from ``feature_mask`` (Captum's convention), ``patch_size`` (square image
    patches), or default to one group per input element (per column for tabular data). Reports
    per-sample effect maps, the mean |δ| per group, the average causal effect curve range per group
    (Chattopadhyay et al. 2019, over ``ace_values`` quantiles of the probe) and the top groups.

    Args:
        feature_mask: integer group ids broadcastable to one input ``[1, ...]``.
        patch_size: square patches for image inputs ``[N, C, H, W]``.
        baseline: the intervention value ``b`` (scalar or tensor broadcastable to the input).
        target: class to explain; ``None`` = the predicted class of each probe sample.
        top_k: number of top groups in the table.
        ace_values: number of quantile values of the ACE curve (``None`` skips ACE).
        ace_samples: probe samples over which the interventional expectations of the ACE are
            averaged (the first ones; ``None`` = all). ACE costs ``ace_values`` times
            ``ace_samples`` forward rows per group.
        name: tag of the audit (default ``"input_effect"``).

    Examples:
        >>> import torch
        >>> from lightning_causal.models import MLP
        >>> audit = InputEffectAudit(top_k=2)
        >>> result = audit.run(MLP(4), Probe(torch.randn(8, 4)))
        >>> result.vectors["mean_abs_effect"].shape, len(result.tables["top_groups"])
        (torch.Size([4]), 2)
    """

    def __init__(
        self,
        feature_mask: Tensor | None = None,
        patch_size: int | None = None,
        baseline: float | Tensor = 0.0,
        target: int | None = None,
        top_k: int = 5,
        ace_values: int | None = 4,
        ace_samples: int | None = 64,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        if feature_mask is not None and patch_size is not None:
            raise ValueError("Expected at most one of `feature_mask` and `patch_size` but got both")
        if patch_size is not None and (isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 1):
            raise ValueError(f"Expected argument `patch_size` to be a positive int but got {patch_size!r}")
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"Expected argument `top_k` to be a positive int but got {top_k!r}")
        if ace_values is not None and (isinstance(ace_values, bool) or not isinstance(ace_values, int) or ace_values < 2):
            raise ValueError(f"Expected argument `ace_values` to be None or an int >= 2 but got {ace_values!r}")
        self.feature_mask, self.patch_size, self.baseline = feature_mask, patch_size, baseline
        if ace_samples is not None and (isinstance(ace_samples, bool) or not isinstance(ace_samples, int) or ace_samples < 1):
            raise ValueError(f"Expected argument `ace_samples` to be None or a positive int but got {ace_samples!r}")
        self.target, self.top_k, self.ace_values, self.ace_samples = target, top_k, ace_values, ace_samples

    def _mask(self, probe: Probe) -> Tensor:
        x = probe.first
        if self.patch_size is not None and x.dim() not in (3, 4):
            raise ValueError(f"`patch_size` needs image inputs [N, C, H, W] or [N, H, W] but got shape {list(x.shape)}")
        mask = make_feature_mask(x.shape[1:], self.feature_mask, self.patch_size)
        if mask.dim() == x.dim() - 1:
            mask = mask.unsqueeze(0)
        return mask.to(x.device)

    def validate(self, model: nn.Module, probe: Probe) -> None:
        if isinstance(probe.inputs, tuple):
            raise ValueError("InputEffectAudit explains single-tensor inputs; got a tuple probe")
        check_feature_mask((probe.first,), self._mask(probe))

    def run(self, model: nn.Module, probe: Probe, *, max_batch_size: int | None = None) -> AuditResult:
        x = probe.first
        mask = self._mask(probe)
        effects = input_effects(model, x, mask, self.baseline, target=self.target, max_batch_size=max_batch_size)
        mean_abs, mean = effects.abs().mean(0), effects.mean(0)
        result = AuditResult(self.name)
        result.vectors["mean_abs_effect"] = mean_abs
        result.vectors["mean_effect"] = mean
        result.maps["effect"] = broadcast_groups(effects, mask, x.shape)
        total = float(mean_abs.sum())
        k = min(self.top_k, mean_abs.numel())
        top = mean_abs.topk(k)
        result.scalars["mean_abs_effect"] = float(mean_abs.mean())
        result.scalars["max_abs_effect"] = float(mean_abs.max())
        result.scalars[f"top{k}_share"] = float(top.values.sum()) / total if total > 0 else 0.0
        ace_range = None
        if self.ace_values is not None:
            sub = slice(0, self.ace_samples)
            ace_mask = mask if mask.shape[0] == 1 else mask[sub]
            ace = average_causal_effect(model, x[sub], ace_mask, "quantiles", target=self.target, max_batch_size=max_batch_size, num_values=self.ace_values)
            ace_range = ace.max(1).values - ace.min(1).values
            result.vectors["ace_range"] = ace_range
            result.scalars["mean_ace_range"] = float(ace_range.mean())
        result.tables["top_groups"] = [
            {
                "group": int(g),
                "mean_abs_effect": float(mean_abs[g]),
                "mean_effect": float(mean[g]),
                **({"ace_range": float(ace_range[g])} if ace_range is not None else {}),
            }
            for g in top.indices.tolist()
        ]
        result.meta.update(groups=int(mean_abs.numel()), samples=int(x.shape[0]))
        return result
