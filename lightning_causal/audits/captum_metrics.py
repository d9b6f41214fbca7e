"""The metrics :class:`~lightning_causal.audits.captum_baseline.CaptumBaseline` applies alike to the causal
effects and to each Captum map: faithfulness (:func:`faithfulness`: deletion and insertion curves and
their AUC), :func:`stability`, Captum's :func:`reference_metrics` (``sensitivity_max``, ``infidelity``)
and the rank :func:`agreement` of two explanations (with :func:`overlap_k`, the ``k`` of its top-k
overlap); every value a mean over the samples where it is defined (:func:`nanmean`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from lightning_causal.audits.base import AuditResult, Probe
from lightning_causal.audits.captum_report import note_and_warn
from lightning_causal.audits.top_share import RULED_OUT_FIX, RULED_OUT_TARGET
from lightning_causal.baselines import metrics as M
from lightning_causal.baselines.captum_methods import CaptumForward
from lightning_causal.causal.engine.ablation import padding_positions
from lightning_causal.causal.engine.probe_warnings import ProbeContentsWarning
from lightning_causal.causal.engine.ranking import kendall, spearman, topk_overlap
from lightning_causal.causal.engine.state import rows_sum_to_one

if TYPE_CHECKING:
    from lightning_causal.audits.captum_baseline import CaptumBaseline

__all__ = ["agreement", "curve_score", "faithfulness", "nan_score_rows", "nanmean", "note_flat_curves", "note_nan_scores", "overlap_k", "reference_metrics", "stability"]

#: ``(inputs, target) -> scores [M, G]``: the causal effects or a Captum method.
Explainer = Callable[[Tensor, Tensor], Tensor]


def overlap_k(top_k: int, n: int) -> int:
    """The ``k`` of a top-k overlap of ``n`` groups or units: at most ``n - 1`` (a top-k of all ``n`` is
    shared by any two rankings, so four heads or quadrants compared with ``top_k=5`` gave 1.0 always).

    Examples:
        >>> overlap_k(5, 4), overlap_k(5, 64), overlap_k(5, 1)
        (3, 5, 1)
    """
    return max(1, min(top_k, n - 1))


def nanmean(v: Tensor) -> float:
    """The mean of ``v``'s defined (not NaN) values, in float64; NaN for an empty ``v``."""
    v = v.double()
    return float(v.nanmean()) if v.numel() else float("nan")


def faithfulness(
    audit: CaptumBaseline, model: nn.Module, probe: Probe, mask: Tensor, s: Tensor, tidx: Tensor, mbs: int | None,
    result: AuditResult, label: str, real: Tensor | None = None, lost: Tensor | None = None,
    clean: tuple[Tensor, bool | None] | None = None,
) -> dict[str, float]:
    """The deletion and insertion areas of the explanation ``s`` (``label``), its mean curves into ``result``; the samples
    ``lost`` (:func:`nan_score_rows`: NaN scores under some explanation; ``None``: those of ``s``) left out of both;
    ``clean``: the audit's clean pass, as :func:`~lightning_causal.baselines.metrics.perturbation_curve` takes it (one
    for every curve)."""
    out = {}
    own = _nan_rows(s, real)
    lost = own if lost is None else lost
    if bool(own.any()):
        s = s.masked_fill(s.isnan(), 0.0)  # NaN scores (a non-finite output) rank nothing: ranked anyhow, their curves are NaN below
    for mode in ("deletion", "insertion"):
        frac, curves = M.perturbation_curve(
            model, probe.first, mask, s, mode=mode, baseline=audit._baseline(probe.first), target=tidx, steps=audit.settings.steps,
            score=audit.settings.score, max_batch_size=mbs, valid=real, clean=clean, **audit.model_options(probe),
        )
        curves = curves.masked_fill(lost.unsqueeze(1), float("nan"))
        out[f"{mode}_auc"] = nanmean(M.curve_auc(frac, curves))
        kept = curves[~lost].nan_to_num(0.0)
        if kept.numel() and bool((kept == kept[:, :1]).all()):  # no sample's score moved along it
            result.meta.setdefault("flat_curves", {}).setdefault(mode, []).append(label)
        x_axis = frac if frac.dim() == 1 else frac.nanmean(0)  # per-sample fractions with padding: their mean
        curve = result.curves.setdefault(mode, {"x": x_axis.tolist()})
        curve[label] = curves.nanmean(0).tolist()  # the samples with NaN scores left out
        # the mean curve over the mean fractions is not the rows' curves (each over its own real groups): the
        # figure's legend shows the AUC of the scalars, the mean of the rows' own areas
        result.meta.setdefault("curve_auc", {}).setdefault(mode, {})[label] = out[f"{mode}_auc"]
    return out


def curve_score(softmax: bool, out: Tensor) -> str:
    """What the perturbation curves record, ``meta["curve_score"]`` (their y axis, the card's "areas of the ..."), read
    from what is explained, ``out`` (the explained output on the probe, ``[N]`` or ``[N, C]``): the explained class's
    probability where the curves take a softmax; else the output as it is, said to be a probability where every entry
    lies in ``[0, 1]`` (a model ending in a sigmoid or a softmax, an ``output=`` that reads probabilities, DETR's best
    probability per class), one whose rows sum to 1 so named, else a logit or a regression value in its units.

    Examples:
        >>> curve_score(False, torch.tensor([[0.2, 0.8], [0.5, 0.5]]))
        'raw output: a probability (every row sums to 1), in [0, 1]'
        >>> curve_score(False, torch.tensor([0.9, 0.1])), curve_score(False, torch.tensor([2.0, -1.0]))
        ('raw output: a probability or a score in [0, 1]', "raw output (logit or regression value, in the output's units)")
    """
    if softmax:
        return "probability of the explained class (softmax)"
    values = out.detach()
    if values.is_floating_point() and values.numel() and bool(((values >= 0) & (values <= 1)).all()):
        if values.dim() == 2 and values.shape[1] > 1 and rows_sum_to_one(values):
            return "raw output: a probability (every row sums to 1), in [0, 1]"
        return "raw output: a probability or a score in [0, 1]"
    return "raw output (logit or regression value, in the output's units)"


def note_flat_curves(audit: CaptumBaseline, result: AuditResult, labels: list[str]) -> None:
    """A note and a warning where no sample's deletion or insertion curve moved under any explanation (``labels``):
    a saturated softmax (logits hundreds apart: the probability is 1.0 whatever is set to the baseline) or an
    output the groups do not change; the areas are those of constant curves and tell no method from another.

    Args:
        audit: the audit (its name).
        result: its result, with ``meta["flat_curves"]`` (mode -> labels whose curves are all flat) and ``meta["curve_score"]``.
        labels: every explanation compared (``"causal"`` and the methods).
    """
    flat = result.meta.get("flat_curves") or {}
    if not all(set(labels) <= set(flat.get(mode, ())) for mode in ("deletion", "insertion")):
        return
    start = result.curves["deletion"]["causal"][0]
    softmax = str(result.meta.get("curve_score", "")).startswith("probability")
    way_out = ("a saturated softmax (logits far apart) keeps it there: `settings=CompareSettings(score='raw')` draws the curves "
               "of the explained logit" if softmax else "the output does not depend on the groups set to the baseline")
    words = (f"no probe sample's deletion or insertion curve moves under any explanation (the {result.meta.get('curve_score')} "
             f"stays at {start:.4g} from the input to every group set to the baseline): the areas compare nothing; {way_out}")
    note_and_warn(audit, result, words, ProbeContentsWarning)


def _nan_rows(s: Tensor, real: Tensor | None) -> Tensor:
    """Samples ``[N]`` whose scores ``s`` hold NaN at a real group."""
    return (s.isnan() if real is None else s.isnan() & real).flatten(1).any(1)


def nan_score_rows(result: AuditResult, scores: dict[str, Tensor], real: Tensor | None = None) -> Tensor:
    """The samples ``[N]`` (booleans) whose scores under some explanation hold NaN at a real group, each explanation's
    recorded in ``meta["nan_score_samples"]``: the model's explained output is not finite there (inf - inf). They are left
    out of every explanation's curves (:func:`faithfulness`), so that the areas compare the same samples: a method
    whose scores stay finite there (a gradient) was otherwise averaged over samples the causal map's area left out.

    Args:
        result: the result (its meta).
        scores: label -> scores ``[N, G]``.
        real: each sample's real groups ``[N, G]`` (``None``: all).
    """
    lost = None
    for label, s in scores.items():
        rows = _nan_rows(s, real)
        if bool(rows.any()):
            result.meta.setdefault("nan_score_samples", {})[label] = rows.nonzero().flatten().tolist()
        lost = rows if lost is None else lost | rows
    return lost


def note_nan_scores(audit: CaptumBaseline, result: AuditResult, n: int) -> None:
    """One note and one warning naming the samples whose scores under some explanation hold NaN (``meta["nan_score_samples"]``,
    from :func:`nan_score_rows`) and the explanations: the model's explained output is not finite there (a diverged model, a
    float16 model whose logits pass 65504, a class the model rules out with -inf explained by ``target=``), so those
    samples are left out of every explanation's areas.

    Args:
        audit: the audit (its name).
        result: its result.
        n: the number of probe samples.
    """
    named = result.meta.get("nan_score_samples") or {}
    if not named:
        return
    rows = sorted(set().union(*named.values()))
    labels = [f"{label}'s" for label in named]
    who = labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} and {labels[-1]}"
    words = (f"{who} scores hold NaN in samples {rows[:8]}{' ...' if len(rows) > 8 else ''} of {n} (the model's explained "
             "output is not finite there or where a group is set to the baseline: a diverged model, a float16 model whose "
             f"logits pass 65504, or {RULED_OUT_TARGET}): those samples are left out of every explanation's deletion and "
             "insertion areas and drawn mean, so that they compare the same samples; a float16 model's overflow is gone in a "
             f"float32 copy (`copy.deepcopy(model).float()`, with a float32 probe); {RULED_OUT_FIX}")
    note_and_warn(audit, result, words, UserWarning)


def stability(audit: CaptumBaseline, explain: Explainer, probe: Probe, tidx: Tensor, s: Tensor, sigma: float | Tensor, real: Tensor | None = None,
               model: nn.Module | None = None) -> float:
    absolute, x, repeats = audit.settings.absolute, probe.first, audit.settings.stability_repeats

    def ranked(z: Tensor) -> Tensor:
        out = explain(z, tidx)
        return out.abs() if absolute else out

    ref = s.abs() if absolute else s
    if x.is_floating_point():
        return nanmean(M.stability(ranked, x, sigma, n_repeats=repeats, seed=audit.seed, reference=ref, valid=real))
    special = torch.tensor(audit.settings.special_tokens, device=x.device, dtype=x.dtype)
    # the baseline token is kept too; a per-pixel baseline of uint8 images (a tensor) keeps each element at its own value
    at_baseline = x == torch.as_tensor(audit.baseline, device=x.device).to(x.dtype)
    eligible = ~((x.unsqueeze(-1) == special).any(-1) | at_baseline)  # torch.isin takes no bool masks
    padding = padding_positions(x, probe.additional_forward_args, model=model)
    if padding is not None:
        eligible &= ~padding
    pool = audit.settings.token_pool
    try:
        return nanmean(M.token_stability(ranked, x, eligible, sigma, n_repeats=repeats, seed=audit.seed, reference=ref,
                                          valid=real, pool=pool))
    except (IndexError, RuntimeError) as err:
        if pool != "probe":
            raise
        raise ValueError(
            f"CaptumBaseline's stability replaced tokens of the integer probe by tokens drawn from all its positions and the "
            f"model failed on them ({type(err).__name__}: {err}); for categorical columns, each with codes of its own, "
            "pass `settings=CompareSettings(token_pool='position')`"
        ) from err


def reference_metrics(
    audit: CaptumBaseline, model: nn.Module, probe: Probe, mask: Tensor, s: Tensor, tidx: Tensor, explain: Explainer, sigma: float | Tensor | None,
    max_batch_size: int | None = None,
) -> dict[str, float]:
    n, x = audit.settings.n_perturb_samples, probe.first
    rows = CaptumForward(model, **audit.model_options(probe)).rows_per_pass(x, max_batch_size)
    inf = M.infidelity(model, x, s, mask, target=tidx, baseline=audit._baseline(x), n_perturb_samples=n, seed=audit.seed,
                       max_batch_size=max_batch_size,
                       **audit.model_options(probe))
    if sigma is None:  # no spread over the probe to scale the radius by (one sample): no sensitivity_max
        return {"infidelity": nanmean(inf)}
    sens = M.sensitivity(explain, x, tidx, radius=sigma, n_perturb_samples=n, seed=audit.seed, max_examples_per_batch=rows)
    return {"sensitivity_max": nanmean(sens), "infidelity": nanmean(inf)}


def agreement(audit: CaptumBaseline, causal: Tensor, other: Tensor, k: int, real: Tensor | None = None) -> dict[str, float]:
    """Mean per-sample Spearman, Kendall τ_b and top-k overlap, over each sample's ``real``
    groups (all groups when ``None``) and the samples where they are defined (neither explanation
    constant: docs/methods.md)."""
    a, b = (causal.abs(), other.abs()) if audit.settings.absolute else (causal, other)
    rho = spearman(a, b, real)  # NaN where either is constant (or fewer than two groups)
    # per sample: never all of its real groups, nor some of the groups tied across the k-th place (a set model's points
    # of exactly 0 effect, taken by lower id in both explanations, agreed in silence)
    topk = topk_overlap(a, b, k, real, proper=True, ties="cut")
    return {
        "spearman": nanmean(rho),
        "kendall": nanmean(kendall(a, b, valid=real)),
        # a constant explanation has no top k (ties broken by group id: two all-zero maps overlapped 1.0)
        "topk": nanmean(topk.masked_fill(rho.isnan(), float("nan"))),
    }
