"""Counterfactual fairness of a classifier, group fairness metrics, and the hidden units that carry
the unfairness (CARE).

``x_cf`` is the counterfactual of ``x`` with the sensitive attribute flipped, from an
:class:`~lightning_causal.causal.scm.scm.AdditiveNoiseSCM` (Kusner et al. 2017, level 3) or the naive
:class:`~lightning_causal.causal.scm.scm.AttributeFlip`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.ablation import replace_units
from lightning_causal.causal.engine.batching import map_rows, rows_per_pass
from lightning_causal.causal.engine.interventions import (
    Intervention,
    capture,
    intervene,
    resolve_module,
)
from lightning_causal.causal.engine.state import audit_mode, resolve_target
from lightning_causal.causal.engine.suffix import suffix_module

__all__ = [
    "probabilities",
    "counterfactual_fairness_gap",
    "group_rates",
    "demographic_parity_difference",
    "equalized_odds_difference",
    "carrier_unit_effects",
]


def probabilities(outputs: Tensor) -> Tensor:
    """Class probabilities ``[N, C]`` in float32: softmax of ``[N, C]`` logits, or for a single
    logit (``[N]`` / ``[N, 1]``) the two columns ``(1 − σ, σ)``.

    Examples:
        >>> probabilities(torch.tensor([0.0]))
        tensor([[0.5000, 0.5000]])
    """
    if not isinstance(outputs, Tensor) or outputs.dim() not in (1, 2):
        raise ValueError(f"Expected model outputs [N] or [N, C] but got {getattr(outputs, 'shape', type(outputs))}")
    out = outputs.float() if outputs.dtype in (torch.float16, torch.bfloat16) else outputs
    if out.dim() == 1 or out.shape[1] == 1:
        p = torch.sigmoid(out.reshape(-1))
        return torch.stack([1 - p, p], 1)
    return out.softmax(dim=1)


def _check_pair(x: Tensor, x_cf: Tensor) -> None:
    if not isinstance(x, Tensor) or not isinstance(x_cf, Tensor):
        raise TypeError(f"Expected arguments `x` and `x_cf` to be tensors but got {type(x)} and {type(x_cf)}")
    if x.shape != x_cf.shape or x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"Expected `x` and `x_cf` to have the same shape [N, ...] with N >= 1 but got {list(x.shape)} and {list(x_cf.shape)}")


def _batched_probs(model: nn.Module, x: Tensor, max_batch_size: int | None) -> Tensor:
    rows = rows_per_pass(model, (x,), max_batch_size)
    return map_rows(x.shape[0], rows, lambda idx: probabilities(model(x[idx])), x.device)


def counterfactual_fairness_gap(
    model: nn.Module, x: Tensor, x_cf: Tensor, target: int | Tensor | None = None, max_batch_size: int | None = None
) -> dict[str, float | Tensor]:
    r"""How much the model's decision would change had the sensitive attribute been different.

    .. math:: Δ(x) = p_t(x_{cf}) − p_t(x), \quad \text{gap} = E|Δ|, \; \max|Δ|, \;
              \text{flip rate} = P[\arg\max f(x) ≠ \arg\max f(x_{cf})]

    A predictor is counterfactually fair (Kusner et al. 2017) when Δ = 0 for every x. Runs in eval
    mode without gradients; training flags are restored.

    Args:
        model: classifier returning logits ``[N, C]`` (or a single logit ``[N]``/``[N, 1]``).
        x: factual inputs ``[N, D]``; x_cf: their counterfactuals, same shape.
        target: class whose probability is compared; ``None`` = the class predicted on ``x``.
        max_batch_size: rows per forward pass.

    Returns:
        ``{"mean_abs": float, "max_abs": float, "mean": float, "flip_rate": float, "delta": Tensor [N]}``.

    Examples:
        >>> model = nn.Linear(2, 2, bias=False)
        >>> _ = model.weight.data.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0]]))
        >>> x = torch.tensor([[0.0, 3.0], [1.0, 3.0]]); x_cf = x.clone(); x_cf[:, 0] = 1 - x[:, 0]
        >>> g = counterfactual_fairness_gap(model, x, x_cf, target=1)
        >>> round(g["mean_abs"], 4), g["flip_rate"]
        (0.2311, 1.0)
    """
    _check_pair(x, x_cf)
    with audit_mode(model):
        p, p_cf = _batched_probs(model, x, max_batch_size), _batched_probs(model, x_cf, max_batch_size)
    t = resolve_target(p, target)
    delta = p_cf.gather(1, t.view(-1, 1)).squeeze(1) - p.gather(1, t.view(-1, 1)).squeeze(1)
    flips = (p.argmax(1) != p_cf.argmax(1)).float()
    return {
        "mean_abs": float(delta.abs().mean()),
        "max_abs": float(delta.abs().max()),
        "mean": float(delta.mean()),
        "flip_rate": float(flips.mean()),
        "delta": delta,
    }


def _as_decisions(preds: Tensor, threshold: float) -> Tensor:
    if not isinstance(preds, Tensor) or preds.dim() != 1:
        raise ValueError(f"Expected argument `preds` to be a 1-d tensor but got {getattr(preds, 'shape', type(preds))}")
    if preds.is_floating_point():
        if ((preds < 0) | (preds > 1)).any():
            raise ValueError("Expected float `preds` to be probabilities in [0, 1]; pass decisions (0/1) or probabilities")
        return (preds >= threshold).long()
    if ((preds != 0) & (preds != 1)).any():
        raise ValueError(f"Expected integer `preds` to be 0/1 decisions but got values {preds.unique().tolist()[:6]}")
    return preds.long()


def _as_groups(groups: Tensor, n: int) -> tuple[Tensor, Tensor]:
    if not isinstance(groups, Tensor) or groups.shape != (n,):
        raise ValueError(f"Expected argument `groups` to be a tensor [{n}] but got {getattr(groups, 'shape', type(groups))}")
    if groups.is_floating_point() and not bool((groups == groups.round()).all()):
        raise ValueError("Expected argument `groups` to hold integral group ids (e.g. the 0/1 sensitive column)")
    ids, inverse = groups.round().long().unique(return_inverse=True)
    return ids, inverse


def _rate(hits: Tensor, inverse: Tensor, mask: Tensor, k: int) -> Tensor:
    num = torch.zeros(k, dtype=torch.float64).index_add_(0, inverse, (hits & mask).double())
    den = torch.zeros(k, dtype=torch.float64).index_add_(0, inverse, mask.double())
    return torch.where(den > 0, num / den.clamp_min(1), torch.full_like(num, float("nan")))


def group_rates(preds: Tensor, groups: Tensor, labels: Tensor | None = None, threshold: float = 0.5) -> dict[str, Tensor]:
    """Per-group rates of positive decisions: ``positive_rate`` P(ŷ=1|g), and with ``labels``
    ``tpr`` P(ŷ=1|y=1,g), ``fpr`` P(ŷ=1|y=0,g), ``accuracy``; NaN where a group has no such rows.

    Returns:
        ``{"groups": ids [G], "count": [G], "positive_rate": [G], ...}`` (float64 rates).

    Examples:
        >>> r = group_rates(torch.tensor([1, 0, 1, 1]), torch.tensor([0, 0, 1, 1]))
        >>> r["positive_rate"].tolist()
        [0.5, 1.0]
    """
    d = _as_decisions(preds, threshold).cpu().bool()
    ids, inv = _as_groups(groups.cpu(), d.shape[0])
    k, every = ids.numel(), torch.ones_like(d)
    out = {"groups": ids, "count": torch.bincount(inv, minlength=k), "positive_rate": _rate(d, inv, every, k)}
    if labels is not None:
        y = _as_decisions(labels.cpu() if labels.is_floating_point() else labels.cpu().long(), 0.5).bool()
        if y.shape != d.shape:
            raise ValueError(f"Expected argument `labels` to have shape {list(d.shape)} but got {list(y.shape)}")
        out.update(tpr=_rate(d, inv, y, k), fpr=_rate(d, inv, ~y, k), accuracy=_rate(d == y, inv, every, k))
    return out


def _spread(rates: Tensor) -> float:
    ok = rates[~rates.isnan()]
    return float(ok.max() - ok.min()) if ok.numel() >= 2 else float("nan")


def demographic_parity_difference(preds: Tensor, groups: Tensor, threshold: float = 0.5) -> float:
    """``max_g P(ŷ=1|g) − min_g P(ŷ=1|g)`` (0 = demographic parity; fairlearn's definition).

    Examples:
        >>> demographic_parity_difference(torch.tensor([1, 0, 1, 1]), torch.tensor([0, 0, 1, 1]))
        0.5
    """
    return _spread(group_rates(preds, groups, threshold=threshold)["positive_rate"])


def equalized_odds_difference(preds: Tensor, labels: Tensor, groups: Tensor, threshold: float = 0.5) -> float:
    """``max(spread of TPR, spread of FPR)`` over groups (Hardt et al. 2016; fairlearn's definition).

    Examples:
        >>> y = torch.tensor([1, 0, 1, 0]); g = torch.tensor([0, 0, 1, 1])
        >>> equalized_odds_difference(torch.tensor([1, 0, 1, 1]), y, g)
        1.0
    """
    r = group_rates(preds, groups, labels, threshold)
    return max(_spread(r["tpr"]), _spread(r["fpr"]))


class _PatchRows(Intervention):
    """Row r of the module output gets unit ``units[r]`` from ``source[r]`` (set per chunk)."""

    def __init__(self) -> None:
        super().__init__(None)
        self.rows: tuple[Tensor, Tensor] | None = None

    def __call__(self, output: Tensor) -> Tensor:
        units, source = self.rows  # type: ignore[misc]
        return replace_units(output, units, source.to(output.dtype))


def carrier_unit_effects(
    model: nn.Module,
    x: Tensor,
    x_cf: Tensor,
    layer: str,
    target: int | Tensor | None = None,
    max_batch_size: int | None = None,
    use_suffix: bool = True,
) -> Tensor:
    r"""How much of the counterfactual change of the decision each unit of ``layer`` carries (CARE).

    .. math:: c_u(x) = p_t(x \mid do(h_u := h_u(x_{cf}))) − p_t(x)

    Unit u's activation from the counterfactual run is patched into the factual run; ``c_u``
    is the part of ``Δ(x) = p_t(x_cf) − p_t(x)`` that flows through u (for a layer every path
    crosses, patching all units gives Δ exactly). CARE (Sun et al. 2022) ranks such units as the
    carriers of the unfairness to repair. All ``N·U`` patched rows run batched through the
    network suffix (or full forward passes where the model cannot be split).

    Args:
        model: classifier; x, x_cf: factual and counterfactual inputs ``[N, D]``.
        layer: module name whose output ``[N, U, ...]`` holds the units.
        target: class whose probability is compared; ``None`` = the class predicted on ``x``.
        max_batch_size: rows per forward pass.
        use_suffix: ``False`` forces full forward passes (same numbers).

    Returns:
        Tensor ``[N, U]``.

    Examples:
        >>> model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
        >>> with torch.no_grad():
        ...     _ = model[0].weight.copy_(torch.eye(2)); _ = model[0].bias.zero_()
        ...     _ = model[2].weight.copy_(torch.tensor([[2.0, 0.0]])); _ = model[2].bias.zero_()
        >>> x, x_cf = torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 0.0]])
        >>> carrier_unit_effects(model, x, x_cf, "1", target=1)
        tensor([[0.3808, 0.0000]])
    """
    _check_pair(x, x_cf)
    module = resolve_module(model, layer)
    with audit_mode(model):
        with capture(model, [layer]) as acts:
            out = model(x)
            h = acts.get(layer)
            model(x_cf)
            h_cf = acts.get(layer)
        if h is None or h.dim() < 2:
            raise ValueError(f"Expected module {layer!r} ({type(module).__name__}) to output a tensor [N, U, ...]")
        p0 = probabilities(out)
        t = resolve_target(p0, target)
        f0 = p0.gather(1, t.view(-1, 1)).squeeze(1)
        n, nu = h.shape[0], h.shape[1]
        suffix = suffix_module(model, layer) if use_suffix else None
        if suffix is not None:
            rows = rows_per_pass(suffix, (h,), max_batch_size)

            def evaluate(idx: Tensor) -> Tensor:
                u, s = idx // n, idx % n
                p = probabilities(suffix(replace_units(h[s], u, h_cf[s])))
                return p.gather(1, t[s].view(-1, 1)).squeeze(1)

            patched = map_rows(nu * n, rows, evaluate, h.device)
        else:
            rows, patch = rows_per_pass(model, (x,), max_batch_size), _PatchRows()

            def evaluate(idx: Tensor) -> Tensor:
                u, s = idx // n, idx % n
                patch.rows = (u, h_cf[s])
                return probabilities(model(x[s])).gather(1, t[s].view(-1, 1)).squeeze(1)

            with intervene(model, {layer: patch}):
                patched = map_rows(nu * n, rows, evaluate, h.device)
    return (patched.view(nu, n) - f0.unsqueeze(0)).T.contiguous()
