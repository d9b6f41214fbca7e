"""What :class:`~lightning_causal.audits.captum_baseline.CaptumBaseline` writes into its result and says:
the ``compare/`` and plain keys, the comparison table and the notes on undefined metrics
(:func:`write_comparison`); the warnings about groups no gradient reaches and methods of 0 everywhere
(:func:`warn_without_gradient`), about a NoiseTunnel method of (nearly) 0 everywhere, its noise level the likely cause
(:func:`tunnel_zeros`), about a layer the explained input does not reach or whose gradient after it is 0
(:func:`warn_layer_unreached`) and about a gradient that misses how the output moves (:func:`warn_surrogate_gradient`)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from lightning_causal.audits.base import AuditResult, Probe
from lightning_causal.causal.effects.gradient_check import Edit, check_gradient_path
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.input_noise import codes_named
from lightning_causal.causal.engine.probe_warnings import ProbeContentsWarning
from lightning_causal.causal.engine.state import audit_mode, gather_target
from lightning_causal.causal.engine.token_ids import embedding_lookup_error
from lightning_causal.causal.engine.user_frame import outside_package

if TYPE_CHECKING:
    from lightning_causal.audits.captum_baseline import CaptumBaseline
    from lightning_causal.baselines.method_specs import MethodSpec

__all__ = ["RANK_METRICS", "SURROGATE_ROWS", "TUNNEL_NEAR_ZERO", "TUNNEL_ZERO_SHARE", "note_and_warn", "note_no_spread", "noisy_codes_named", "tunnel_zeros", "warn_layer_unreached", "warn_surrogate_gradient",
           "warn_without_gradient", "write_comparison"]

#: The rank-agreement metrics (columns of the comparison table; the causal row has none: ``None`` there, JSON ``null``,
#: NaN in a pandas DataFrame, ``-`` on the text card).
RANK_METRICS = ("spearman", "kendall", "topk")

#: The share of the (sample, group) entries that a method scores without noise which its NoiseTunnel may score (nearly) 0
#: before :func:`tunnel_zeros` links the zeros to the tunnel's noise level (not all: the few noisy copies that land on a
#: saturated tanh's slope leave values, on 8% of the entries of 19 tanh columns under noise of sd 1000, 8 copies).
TUNNEL_ZERO_SHARE = 0.8

#: An entry of a NoiseTunnel method's map within this share of the largest magnitude the method gives without noise
#: counts as 0 for :func:`tunnel_zeros` (tanh units saturated by noise of sd 900 left 1e-3 of it).
TUNNEL_NEAR_ZERO = 0.01

#: How many probe rows, spread evenly over the probe, :func:`warn_surrogate_gradient` checks.
SURROGATE_ROWS = 16


def write_comparison(audit: CaptumBaseline, result: AuditResult, rows: dict[str, dict[str, float]], seconds: dict[str, float],
                     zero: list[str] | tuple[str, ...] = (), tunnel: dict[str, str] | None = None) -> None:
    """The ``compare/`` and plain keys, the comparison table and the notes; ``zero``: the methods that gave 0 to every
    group of every sample (:func:`warn_without_gradient`), whose NaN metrics are noted with that cause; ``tunnel``: the
    NoiseTunnel methods of (nearly) 0 everywhere and what :func:`tunnel_zeros` says of them, noted first instead."""
    tunnel = tunnel or {}
    table = []
    for label, row in rows.items():
        for metric, value in row.items():  # a method's under compare/<M>/, which sorts after causal/ (card_tags)
            result.scalars[metric if label == "causal" else f"compare/{audit._tagged(label)}/{metric}"] = value
        table.append({"method": label, **{m: row.get(m) for m in RANK_METRICS}, **{
            m: v for m, v in row.items() if m not in RANK_METRICS}, "seconds": seconds[label]})
    causal_row = table.pop(0)
    result.tables["comparison"] = table + [causal_row]
    undefined = [label for label, row in rows.items() if any(isinstance(v, float) and math.isnan(v) for v in row.values())]
    notes = list(tunnel.values())  # the zeros linked to the noise level (which the card's 160 characters name)
    zero = [label for label in zero if label not in tunnel]
    if zero:  # first: the card cuts a note at 160 characters
        notes.append(f"{list(zero)} give 0 everywhere (a gradient of 0: round, a step, dead ReLUs): they rank nothing "
                     "(NaN); use FeatureAblation")
    undefined = [label for label in undefined if label not in zero and label not in tunnel]
    if undefined:
        causal = result.vectors.get("mean_abs/causal")
        cause = ("one feature group, which has no ranking to compare (pass a `feature_mask` or `patch_size` of several "
                 "groups)") if causal is not None and causal.numel() == 1 else "constant explanations or curves"
        notes.append(f"undefined (NaN) metrics for {undefined}: {cause}")
    if notes:
        result.meta["notes"] = notes


def tunnel_zeros(audit: CaptumBaseline, scores: dict[str, Tensor], levels: dict[str, tuple[float, bool]],
                 plain: Callable[[MethodSpec], Tensor]) -> dict[str, str]:
    """What to say of each NoiseTunnel method that scores (nearly) 0 at least :data:`TUNNEL_ZERO_SHARE` of the groups
    of the samples that the same method without the tunnel scores (``plain(spec)``: its groups' scores ``[N, G]``,
    one run of the method, an ``nt_samples``-th of the tunnel's); nearly 0: within :data:`TUNNEL_NEAR_ZERO` of the
    largest magnitude in the method's map without noise. SmoothGrad averages the method over noisy copies
    ``x + N(0, stdevs²)`` (``nt_type="smoothgrad"``, the default, the only one checked: ``smoothgrad_sq`` averages the
    method's squares, of another scale, and ``vargrad`` their variance, 0 on a linear model whatever the noise), and
    noise far wider than the inputs' scale (NoiseTunnel's default on a table of mixed
    scales) drives a saturating unit (tanh, sigmoid) into its flat tails at every copy, where its gradient is 0
    (float32's tanh is 1.0 beyond ~9); zeros of the method without noise as well (a step, a unit the inputs
    saturate) are :func:`warn_without_gradient`'s. The statement names the level (``levels``: label -> (stdevs,
    whether it is the default, 15% of the inputs' range)) and the option that sets it, ``stdevs``, together, first (a
    card note shows 160 characters). Said as a ``ProbeContentsWarning`` too; the labels returned are those
    :func:`warn_without_gradient` leaves to it."""
    said: dict[str, str] = {}
    for spec in audit.specs:
        if not spec.noise_tunnel or spec.layer or spec.grouped or spec.label not in levels:
            continue
        if spec.options.get("nt_type", "smoothgrad") != "smoothgrad":  # squares: of another scale; VarGrad 0 where linear
            continue
        reference = plain(spec).abs()
        small = TUNNEL_NEAR_ZERO * float(reference.max())
        scored = reference > small  # what the method scores without the noise
        if not bool(scored.any()):
            continue
        share = float((scores[spec.label].abs() <= small)[scored].double().mean())
        if share < TUNNEL_ZERO_SHARE:
            continue
        level, default = levels[spec.label]
        said[spec.label] = (
            f"{spec.label}: ~0 on {share:.0%} of what {spec.name} without noise scores; its noise `stdevs={level:.4g}`"
            f"{' (the default)' if default else ''} may saturate the model (tanh, sigmoid): give the option a lower "
            f"`stdevs`, e.g. (\"NoiseTunnel({spec.name})\", {{\"stdevs\": ...}}), at the scale of the inputs that matter")
        warnings.warn(f"CaptumBaseline {audit.name!r}: {said[spec.label]}", ProbeContentsWarning, stacklevel=outside_package())
    return said


def note_and_warn(audit: CaptumBaseline, result: AuditResult, words: str, category: type[Warning] = UserWarning) -> None:
    """Say ``words`` twice, as the comparison's notes of what holds at this probe are said: in ``result``'s notes (the
    text card, the report) and as a warning of ``category`` prefixed by the audit's name, at the user's line."""
    result.meta.setdefault("notes", []).append(words)
    warnings.warn(f"CaptumBaseline {audit.name!r}: {words}", category, stacklevel=outside_package())


def warn_without_gradient(audit: CaptumBaseline, scores: dict[str, Tensor], said: Iterable[str] = ()) -> list[str]:
    """Warn when a gradient method scores a group exactly 0 in every sample whose causal effect
    is not 0 (a NaN effect, inf - inf of an output that is not finite, is no effect seen): no gradient reaches it (a max-pooling or ReLU that passes none from there, as in an
    image CNN's border patches; a category code cast to an integer inside the model). A method that
    scores every group 0 in every sample meets a model whose gradient is 0 (``torch.round`` of its
    activations): said so, and its label returned (the comparison's notes name the cause of its NaN). Both
    warnings say what holds at the probe's samples: a ``ProbeContentsWarning``, which :meth:`Audit.dry_run` ignores
    (two samples whose ReLUs are all off say nothing of the whole probe). ``said``: the NoiseTunnel methods whose
    zeros :func:`tunnel_zeros` has linked to their noise level, not warned of again (an all-0 one is still returned)."""
    moved = scores["causal"].nan_to_num(0.0).ne(0).any(0)  # a NaN effect (inf - inf of a float16 model's overflow) is no effect seen
    zero = []
    said = set(said)
    for spec in audit.specs:
        if spec.layer or spec.grouped:
            continue
        blind = (scores[spec.label] == 0).all(0) & moved
        if bool(blind.any()) and bool((scores[spec.label] == 0).all()):
            zero.append(spec.label)
            if spec.label in said:
                continue
            warnings.warn(
                f"CaptumBaseline {audit.name!r}: {spec.label} gives exactly 0 in every probe sample to every group, "
                "while the causal effects are not all 0: the model's gradient with respect to its input is 0 at these "
                "inputs (a piecewise-constant step such as torch.round, floor or sign of its activations without a "
                "straight-through gradient, or ReLUs off at every probe sample), so the method ranks nothing: its "
                "agreement and stability are NaN and its deletion/insertion areas are those of the groups in index order. "
                "Gradient methods cannot explain such a model there; FeatureAblation and ShapleyValueSampling can",
                ProbeContentsWarning, stacklevel=outside_package(),
            )
        elif blind.any() and spec.label not in said:
            ids = blind.nonzero().flatten().tolist()
            names = [audit.feature_names[i] if audit.feature_names is not None else str(i) for i in ids]
            warnings.warn(
                f"CaptumBaseline {audit.name!r}: {spec.label} gives exactly 0 in every probe sample to the groups "
                f"{names[:10]}{' ...' if len(names) > 10 else ''} whose causal effect is not 0: no gradient reaches them "
                "(a max-pooling or ReLU that passes none from there at these inputs, or a category code cast to an "
                "integer inside the model, e.g. nn.Embedding(x[:, j].long())), so its agreement with the causal effects "
                "is low for that reason; compare such groups with FeatureAblation",
                ProbeContentsWarning, stacklevel=outside_package(),
            )
    return zero


def warn_layer_unreached(audit: CaptumBaseline, result: AuditResult, layer: str, method: str, causal: Tensor,
                         other: Tensor, moved: Callable[[], bool] | None = None) -> None:
    """Warn, and note in ``result``, when ``method`` (``LayerConductance``) gives every unit of ``layer``
    exactly 0 in every probe sample while their causal effects are not 0: the layer does not depend on
    the explained input (the table's branch of ``model(image, tab)`` with the image explained and the
    table a forward argument), and Captum's layer methods attribute along that input only, so the
    ``compare/`` metrics of the layer are NaN (a constant ranking) with nothing else saying why. Where
    ``moved()`` says the layer's activations change with the explained input, the cause is another: the
    model's gradient after the layer is 0 at the probe's samples (``torch.round`` of its activations, or ReLUs after
    it off at every sample), said so; that warning says what holds at the samples, a ``ProbeContentsWarning``, which
    :meth:`Audit.dry_run` ignores (two samples whose ReLUs are all off say nothing of the whole probe), where a layer
    that reads forward arguments only is one whatever the samples, a ``UserWarning`` the dry run shows."""
    if not bool((other == 0).all()) or not bool(causal.ne(0).any()):
        return
    category: type[UserWarning] = UserWarning
    if moved is not None and moved():
        category = ProbeContentsWarning
        message = (f"{method} gives every unit of {layer!r} exactly 0 in every probe sample, whose causal effects are not "
                   "0: the model's gradient after the layer is 0 at every sample (a piecewise-constant step such as "
                   "torch.round, floor or sign of its activations, without a straight-through gradient, or ReLUs after "
                   "it off at every probe sample), so a gradient method ranks nothing there and its compare/ metrics are "
                   "NaN; its causal effects (unit_effects) are what explains the layer")
    else:
        message = (f"{method} gives every unit of {layer!r} exactly 0 in every probe sample, whose causal effects are not "
                   "0: the layer does not depend on the explained input (it reads forward arguments only, e.g. the table "
                   "beside an explained image), and Captum's layer methods attribute along that input, so its compare/ "
                   "metrics are NaN; explain the input that reaches it (the first parameter of forward) or leave it out "
                   "of `layers`")
    note_and_warn(audit, result, message, category)


def warn_surrogate_gradient(audit: CaptumBaseline, model: nn.Module, probe: Probe, target: Tensor, result: AuditResult) -> None:
    """Warn when autograd misses part of how the output depends on the explained input (a straight-through
    estimator kept in eval mode, ``hard + soft - soft.detach()``; a ``.detach()`` branch): the gradient methods then
    explain a surrogate, not the model the causal effects and the curves measure. Checked as the first-order
    estimates are (:func:`~lightning_causal.causal.effects.gradient_check.check_gradient_path`: a central difference),
    on up to :data:`SURROGATE_ROWS` rows spread over the probe (a straight-through clamp acts only on the rows beyond
    its clip: the first two rows missed it; about 30 ms on a 64-image probe of a small CNN), once per run, where a gradient method of the inputs is compared; noted in ``result`` for the
    TensorBoard card."""
    labels = [s.label for s in audit.specs if not s.layer and not s.grouped]
    x = probe.first
    if not labels or not x.is_floating_point():
        return
    # rows spread over the probe (a straight-through clamp changes only the rows beyond its clip: two rows missed it)
    rows = torch.linspace(0, x.shape[0] - 1, min(SURROGATE_ROWS, x.shape[0]), device=x.device).round().long().unique()
    forward = Forward(model, num_samples=len(probe), **audit.model_options(probe))

    def run(edit: Edit) -> Tensor:
        return gather_target(forward(edit(0, x[rows]), rows=rows), target[rows])

    with audit_mode(model, grad=True):
        warned = check_gradient_path(run, "the explained input", f"the maps of {', '.join(labels)}",
                                     "their agreement with the causal effects measures the surrogate gradient, not the "
                                     "model; FeatureAblation and ShapleyValueSampling need no gradient",
                                     prefix=f"CaptumBaseline {audit.name!r}: ", model=model)  # through a reentrant checkpoint too
    if warned:  # and noted on the card (the model's own warnings are no finding of the check)
        result.meta.setdefault("notes", []).append(
            f"{labels} follow a gradient that misses how the output moves (a straight-through estimator, .detach()): "
            "they explain a surrogate")


def note_no_spread(audit: CaptumBaseline, result: AuditResult, x: Tensor, codes_only: bool = False) -> None:
    """The note and warning of a float probe of which no element varies over the samples (one sample): the stability
    noise is a share of each element's standard deviation over them, so there is no ``stability`` (nor
    ``sensitivity_max``) rather than a stability of 1 for every method. ``codes_only``: the elements the noise would
    move are all category codes an embedding reads cast to indices, which take none."""
    message = (f"no stability: the noise would move only category codes of the probe's {list(x.shape)} input, which an "
               "embedding reads cast to indices and which take none (the other elements do not vary over its samples)"
               if codes_only else
               f"no stability: no element of the probe's {list(x.shape)} input varies over its samples (one sample?), and "
               "the noise is a share of each element's standard deviation over them; give more samples or `noise_sigma=`")
    note_and_warn(audit, result, message, ProbeContentsWarning)


def noisy_codes_named(audit: CaptumBaseline, explainers: dict[str, Callable[[Tensor, Tensor], Tensor]], codes: Tensor,
                      x: Tensor, notes: list[str]) -> dict[str, Callable[[Tensor, Tensor], Tensor]]:
    """The ``explainers`` of ``audit`` on a float table ``x`` whose ``codes`` (bool ``[1, ...]``) are category codes the
    model casts to embedding indices: each ``NoiseTunnel`` method (Captum's Gaussian noise on every input element, the
    codes too, which ``.long()`` runs as other categories) is warned of once, with a note in ``notes``, and its pass that an
    embedding cannot look up (a code pushed below 0 or past the last: ``IndexError: index out of range in self`` from deep
    inside the model) is a ``ValueError`` naming the method and the code columns."""
    where = codes_named((x,), (codes,))
    noisy = [s.label for s in audit.specs if s.noise_tunnel]
    if not noisy:
        return explainers
    words = (f"CaptumBaseline {audit.name!r}: {', '.join(noisy)} add(s) Captum's Gaussian noise to every input element, the "
             f"category codes in {where} too, which the model casts to embedding indices: its maps average gradients at "
             "other categories (and a code pushed below 0 or past the last fails the pass); leave NoiseTunnel out for "
             "such a table, or explain its numeric columns through a wrapper that holds the codes fixed")
    warnings.warn(words, ProbeContentsWarning, stacklevel=outside_package())
    notes.append(words)

    def named(label: str, explain: Callable[[Tensor, Tensor], Tensor]) -> Callable[[Tensor, Tensor], Tensor]:
        def run(z: Tensor, target: Tensor) -> Tensor:
            try:
                return explain(z, target)
            except (IndexError, RuntimeError) as caught:
                err = embedding_lookup_error(caught)
                if err is None:
                    raise
                raise ValueError(
                    f"Expected the methods of CaptumBaseline {audit.name!r} to run the model on inputs it can read, but "
                    f"{label} failed with IndexError: {err}: its Gaussian noise moved the category codes in {where}, "
                    f"which the model casts to embedding indices, outside their range; leave {label} out of `methods` "
                    "(compare the codes with FeatureAblation, the causal effects' interventions)") from caught
        return run

    return {label: named(label, e) if label in noisy else e for label, e in explainers.items()}
