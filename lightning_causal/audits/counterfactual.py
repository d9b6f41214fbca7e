"""CounterfactualAudit: contrastive explanations of the probe's misclassified samples."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal, get_args

import torch
from torch import Tensor, nn

from lightning_causal.audits.base import Audit, AuditResult, Probe
from lightning_causal.audits.category_codes import category_codes
from lightning_causal.audits.group_regions import (
    cloud_layout,
    reading_clips,
    reading_clouds,
    signal_layout,
)
from lightning_causal.audits.label_task import (
    LEVEL_WAYS_OUT,
    label_task,
    level_outputs,
    smoothed_multi_hot,
    soft_binary_targets,
)
from lightning_causal.audits.options import (
    check_class_name_count,
    check_name_count,
    check_names,
    check_one_label_per_sample,
    class_indices,
    embedding_output,
    names_meta,
    regression_labels,
    single_input_error,
    task_model,
)
from lightning_causal.audits.task_warnings import (
    continuous_distribution_read,
    continuous_guess,
    ran_outputs,
)
from lightning_causal.causal.engine.ablation import padding_positions
from lightning_causal.causal.engine.batching import remembered_fit, say_once_in_block
from lightning_causal.causal.engine.checks import check_class_labels, check_int, check_type
from lightning_causal.causal.engine.forward import Forward, OutputSpec
from lightning_causal.causal.engine.gradient_cuts import float_reading
from lightning_causal.causal.engine.padded_reads import warn_padded_target
from lightning_causal.causal.engine.probe_warnings import ProbeContentsWarning
from lightning_causal.causal.engine.sample_independence import check_samples_independent
from lightning_causal.causal.engine.state import audit_mode, rng_preserved
from lightning_causal.causal.engine.token_ids import INDEX_DTYPES
from lightning_causal.causal.engine.user_frame import outside_package
from lightning_causal.causal.structure.counterfactual_refine import check_discrete
from lightning_causal.causal.structure.counterfactuals import (
    ITEM_COUNTERFACTUALS,
    CounterfactualSettings,
    OutsideBoundsWarning,
    check_bound_pair,
    check_bounds,
    check_scale,
    counterfactual_explanation,
    warn_outside_bounds,
)

__all__ = ["CounterfactualAudit", "split_triptych"]

#: what ``CounterfactualAudit(towards=)`` takes: the probe's labels, or each sample's runner-up class
Towards = Literal["label", "runner_up"]
TOWARDS: tuple[Towards, ...] = get_args(Towards)


def _panel(img: Tensor, lo: float, hi: float) -> Tensor:
    return ((img - lo) / (hi - lo if hi > lo else 1.0)).clamp(0, 1)


def drawn_as_lines(panel: Sequence[int]) -> bool:
    """Whether a counterfactual image of shape ``panel`` (``[C, H, W]``, or ``[M, C, H, W]`` for several) is a univariate
    signal, one channel of one row (``[1, 1, T]``): the figure
    (:func:`~lightning_causal.reporting.counterfactual_figures.counterfactual_figure`) draws its input and counterfactual
    as lines, which :func:`_triptych` scales on their joint range.

    Args:
        panel: the shape of one sample's image, or of several stacked.

    Examples:
        >>> drawn_as_lines((1, 1, 24)), drawn_as_lines((2, 1, 1, 24)), drawn_as_lines((1, 6, 6)), drawn_as_lines((1, 24))
        (True, True, False, False)
    """
    return len(panel) >= 3 and tuple(panel[-3:-1]) == (1, 1)


def _triptych(x: Tensor, cf: Tensor) -> Tensor:
    """``[M, C, H, 3W + 2]`` images: input | counterfactual | difference (0.5 = unchanged). The input and the
    counterfactual are drawn on the input's range, as the other audits draw it (a counterfactual beyond it saturates,
    its size read in the difference): on their joint range one pixel the search drove out of the data's range (an
    image's pixel to -0.5) washed the rest of both out (an image in [0, 0.3] drawn in [0.77, 1]). An input of one value,
    and a univariate signal (``[1, 1, T]``, drawn as lines, where a spike clamped to the input's peak read as no change):
    the joint range."""
    if x.dim() == 3:
        x, cf = x.unsqueeze(1), cf.unsqueeze(1)
    rows = []
    for a, b in zip(x.float().cpu(), cf.float().cpu()):
        lo, hi = float(a.min()), float(a.max())
        if not hi > lo or drawn_as_lines(a.shape):
            lo, hi = float(torch.minimum(a, b).min()), float(torch.maximum(a, b).max())
        d = b - a
        scale = float(d.abs().max()) or 1.0
        gap = torch.ones(a.shape[0], a.shape[1], 1)
        rows.append(torch.cat([_panel(a, lo, hi), gap, _panel(b, lo, hi), gap, 0.5 + 0.5 * d / scale], dim=2))
    return torch.stack(rows)


def split_triptych(images: Tensor) -> dict[str, Tensor]:
    """The panels of :func:`_triptych`'s images, each ``[M, C, H, W]``: ``"input"`` and
    ``"counterfactual"`` on one scale per sample in [0, 1], ``"difference"`` (counterfactual − input)
    in [-1, 1] relative to each sample's largest change (what the TensorBoard figure draws).

    Args:
        images: the audit's triptych images ``[M, C, H, 3W + 2]`` (input, counterfactual and difference
            side by side, 1-pixel gaps).

    Examples:
        >>> x = torch.zeros(1, 1, 2, 2)
        >>> cf = x.clone()
        >>> cf[0, 0, 0, 0] = 1.0
        >>> {k: v[0, 0].tolist() for k, v in split_triptych(_triptych(x, cf)).items()}
        {'input': [[0.0, 0.0], [0.0, 0.0]], 'counterfactual': [[1.0, 0.0], [0.0, 0.0]], 'difference': [[1.0, 0.0], [0.0, 0.0]]}
    """
    w = (images.shape[-1] - 2) // 3
    return {"input": images[..., :w], "counterfactual": images[..., w + 1: 2 * w + 1],
            "difference": 2.0 * images[..., 2 * w + 2:] - 1.0}


class CounterfactualAudit(Audit):
    """Contrastive explanations of the probe's misclassified samples (TRACER; Wachter et al. 2017).

    For up to ``max_samples`` misclassified probe samples, the smallest change that makes the
    model predict the true label (:func:`~lightning_causal.causal.structure.counterfactuals.counterfactual_explanation`);
    with ``towards="runner_up"``, for the first ``max_samples`` probe samples, the smallest change that
    flips the predicted class to the sample's second-highest (a Q-network's greedy action to the other
    action; no labels needed). Reports ``misclassified_rate`` (towards the labels), ``explained``,
    ``success_rate`` and, over the successes,
    ``mean_l1``, ``mean_l2`` and ``mean_sparsity`` (the fraction of input elements changed, frozen
    ones included: lower is sparser); a table ``counterfactuals``, a row per sample, with the counterfactual as numbers:
    ``changed_elements`` (the indices into one flattened sample, of shape ``meta["input_shape"]``; of tabular inputs
    the columns, named in ``changed_features`` where ``feature_names`` are given), ``original_values`` and
    ``counterfactual_values`` there (``x[index].flatten()[changed_elements] = counterfactual_values`` gives the point
    back from the JSON report); tabular inputs also ``changes``, the three largest changes by column in words, and so
    do sequences ``[N, T, F]`` or ``[N, C, T]`` by step (``"step 103 of feature 2: -0.18"``; of channels first,
    ``channel``; of a point cloud ``[N, P, D]`` or ``[N, D, P]`` within
    :func:`~lightning_causal.audits.group_regions.point_clouds`, as under ``figure_kind="points"``, by point:
    ``"coordinate 2 of point 11: -0.18"``); for images, one picture per sample: input | counterfactual |
    difference (a features-last sequence ``[N, T, F]`` is drawn features x time; of a volume or video
    ``[N, C, D, H, W]``, the depth slice (frame) where the counterfactual changes most, its index in the row's
    ``depth``, a clip's in its ``frame`` within :func:`~lightning_causal.audits.group_regions.video_clips`, as under
    ``figure_kind="frames"``); ``meta["counterfactual_inputs"]``
    says whether the pictures are of the inputs ``"as_given"``, ``"transposed"``, ``"depth_slice"`` or of ``[N, D]``
    ``"columns"`` as one channel ``[M, 1, 1, D]``, which TensorBoard draws only under
    ``figure_kind="sequence"``: a univariate series ``[N, T]``). Needs probe labels, unless
    ``towards="runner_up"``: class indices ``[N]``, or soft labels ``[N, C]`` (mixup, CutMix, label
    smoothing, a teacher's probabilities: rows non-negative summing to 1), read by their largest entry
    (a sample is misclassified when its predicted class is not that argmax; ``meta["labels"]`` says so). An explained
    sample holding NaN or infinity (a missing value a model that imputes inside reads) gets no counterfactual (the
    search's cost of a change is NaN there): a note and a ``ProbeContentsWarning`` name those samples and their columns.

    Args:
        max_samples: misclassified samples explained (the first ones of the probe; with
            ``towards="runner_up"``, the first probe samples).
        settings: the optimisation (:class:`~lightning_causal.causal.structure.counterfactuals.CounterfactualSettings`:
            L1/L2 proximity weights, steps, learning rate, ...).
        bounds: optional ``(low, high)`` input bounds, broadcastable to one input; an explained sample outside them
            on a mutable feature warns, by its probe index (the search moves it inside, needed or not).
        mask: optional mask of mutable features (nonzero: may change), broadcastable to one input
            ``[1, ...]``: the same for every sample. The search moves every mutable element
            continuously: one-hot columns of a categorical feature may end up fractional
            (``color=green: +0.08``) unless declared in ``categorical``.
        categorical: one-hot groups of tabular columns, each a sequence of >= 2 column indices
            (e.g. ``[[3, 4, 5]]``): the counterfactuals stay one-hot there (a category switches
            whole: ``color=red: -1, color=green: +1``).
        integer: integer columns (indices, or a boolean tensor broadcastable to one sample): the
            counterfactuals stay integral there. Both as in
            :func:`~lightning_causal.causal.structure.counterfactuals.counterfactual_explanation`;
            a sample whose rounded points never reach its label is reported as not found.
        scale: each feature's unit of cost (positive, broadcastable to one input; e.g. each column's median
            absolute deviation, as Wachter et al.): the search's cost is ``l1 Σ |δ_j| / s_j + l2 Σ (δ_j / s_j)²``,
            so that columns in different units compete in comparable steps (``None``: each column in its own
            units). ``mean_l1``/``mean_l2`` stay in the inputs' units.
        output: which tensor of the model's return value holds the logits (see :class:`Audit`).
        feature_names: names of the columns of tabular inputs (the table's ``changes`` use them).
        class_names: one name per class, at least (more: a head that grows during the fit; the figure's titles use
            them; for tabular inputs the text card's rows ``#index predicted → counterfactual class: changes``; ``#index predicted → label (not found)``
            where no counterfactual was found).
        name: tag of the audit (default ``"counterfactual"``).
        towards: the class each counterfactual reaches: ``"label"`` (the probe's misclassified samples,
            towards their labels) or ``"runner_up"`` (every sample, towards the class of its second-highest
            output: what change of the input would flip the decision, for a model without true classes,
            such as a Q-network whose predicted class is the greedy action; a sample where every other output
            is ``-inf`` has no such class: its target is a class ruled out there, class 0, or class 1 where class 0
            is the prediction, so its row says not found and a note names it). Each row of the
            ``counterfactuals`` table holds ``target``, the class searched for (and ``label`` where
            ``towards="label"``).

    Examples:
        >>> from lightning_causal.models import MLP
        >>> x = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
        >>> from lightning_causal.causal.structure.counterfactuals import CounterfactualSettings
        >>> audit = CounterfactualAudit(max_samples=4, settings=CounterfactualSettings(steps=20))
        >>> r = audit.run(MLP(4), Probe(x, torch.zeros(16, dtype=torch.long)))
        >>> sorted(k for k in r.scalars if k in ("explained", "misclassified_rate"))
        ['explained', 'misclassified_rate']
    """

    whole_probe_rows_check = True  # its passes run the samples in batches of their own (Audit's attribute)

    def __init__(
        self,
        max_samples: int = 16,
        settings: CounterfactualSettings | None = None,
        *,
        bounds: tuple | None = None,
        mask: Tensor | None = None,
        output: OutputSpec = None,
        name: str | None = None,
        feature_names: Sequence[str] | None = None,
        class_names: Sequence[str] | None = None,
        categorical: Sequence[Sequence[int]] | None = None,
        integer: Sequence[int] | Tensor | None = None,
        towards: Towards = "label",
        scale: Tensor | None = None,
    ) -> None:
        super().__init__(name, output=output)
        if towards not in TOWARDS:
            raise ValueError(f"Expected argument `towards` to be one of {list(TOWARDS)} but got {towards!r}")
        self.towards = towards
        self.feature_names, self.class_names = check_names("feature_names", feature_names), check_names("class_names", class_names)
        self.max_samples = check_int("max_samples", max_samples, minimum=1)
        self.settings = check_type("settings", settings, CounterfactualSettings, none_ok=True) or CounterfactualSettings()
        if bounds is not None:  # the pair and low <= high; the shape is checked against the probe in `validate`
            check_bound_pair(bounds)
        check_type("mask", mask, Tensor, none_ok=True)
        self.bounds, self.mask = bounds, mask
        self.categorical, self.integer = categorical, integer
        check_type("scale", scale, Tensor, none_ok=True)
        self.scale = scale

    def validate(self, model: nn.Module, probe: Probe) -> None:
        if probe.labels is None and self.towards == "label":
            raise ValueError("CounterfactualAudit needs probe labels (the true classes to explain towards); got none. "
                             "Without true classes (a Q-network, whose predicted class is its greedy action), "
                             "`CounterfactualAudit(towards=\"runner_up\")` explains what flips each sample's predicted class")
        if isinstance(probe.inputs, tuple):
            raise single_input_error("CounterfactualAudit", probe.inputs)
        if not probe.first.is_floating_point():
            dtype = probe.first.dtype
            floats = "; read the probe as floats, `unpack_batch=lambda batch: (batch[0].float(), batch[1], None)` (a model that casts inside, "
            if dtype in (torch.uint8, torch.bool):  # each its own reading: a bool mask is no pixel of 0..255
                high, what = (255, "uint8 pixels") if dtype == torch.uint8 else (1, "bool masks")
                way = f"{floats}{float_reading(dtype)}, reads them the same), with `bounds=(0, {high})` for {what}"
            elif dtype.is_complex:
                way = "; give the model real inputs, torch.view_as_real(z), that it turns complex inside (torch.view_as_complex)"
            elif dtype not in INDEX_DTYPES:  # no token ids (no values between them): samples the model casts inside
                info = torch.iinfo(dtype)
                way = (f"{floats}{float_reading(dtype)}, reads them the same), with `bounds=({info.min}, {info.max})` "
                       f"for {dtype} samples")
            elif codes := category_codes(model, probe):  # a table's category codes, a column per embedding
                way = (f": category codes, each column looked up by an embedding of its own ({codes}), which a search "
                       "cannot move by fractions; explain the model's float input instead (CausalAuditCallback(explain=) "
                       "naming it: the codes follow their rows unchanged), or give the model the categories one-hot "
                       "(floats, the embedding of a column as `onehot @ emb.weight`) and keep each block one-hot with "
                       "`categorical=` (docs/recipes.md, 'A tabular transformer')")
            else:  # token or item ids: no values between them, no gradient
                way = f"; {ITEM_COUNTERFACTUALS}"
            raise ValueError(f"CounterfactualAudit optimises continuous inputs but the probe holds {dtype}{way}")
        if self.towards == "runner_up":
            self._validate_outputs(model, probe, regression=False)
            self._validate_options(probe, model)
            return
        tasked = task_model(model, self.output)
        labels = class_indices(probe.labels, tasked)  # soft labels [N, C]: their argmax
        regression = regression_labels(labels, model=tasked)  # said after the model's kind: not 'per-position or multi-label' labels
        # smoothed multi-hot rows (0.05 / 0.95) of a model that says nothing are real-valued to regression_labels, but
        # are a multi-label classifier's: refused as labels of no single class, with the multi-label way out
        if not regression or label_task(tasked) is None and smoothed_multi_hot(labels) is not None:
            check_one_label_per_sample("CounterfactualAudit", labels, len(probe), "to explain towards",
                                       multi_label_output="lambda out: torch.cat([-out[:, [k]], out[:, [k]]], 1)",
                                       model=tasked, without_labels="`towards=\"runner_up\"`, which needs no labels "
                                       "(the smallest change to the output's second class)")
        self._validate_outputs(model, probe, regression, labels)
        if regression:  # no class indices to cast with .long() either
            inputs = probe.inputs if isinstance(probe.inputs, tuple) else (probe.inputs,)
            # two augmented views of one shape, (view1, view2), read as (x, y) by the default unpacking
            views = labels.shape == inputs[0].shape and labels.dim() > 2
            raise ValueError(
                f"CounterfactualAudit explains a classifier's decision (the smallest change that flips its class) but the "
                f"probe's labels are real-valued {list(labels.shape)} (a regression, e.g. a forecast?): a regression has no "
                "class to flip to; explain it with InputEffectAudit or SobolAudit(probability=False), `target=` an output"
                "; the smallest change that brings output k above a value t is two classes, "
                "`CounterfactualAudit(towards=\"runner_up\", output=lambda out: torch.stack([t - out[:, k], out[:, k] - t], 1))` "
                "(class 1 above t; the labels are not read)"
                + ("; labels of the inputs' own shape may be a second input, the other view of a self-supervised batch "
                   "`(view1, view2)` read as `(x, y)`: leave it out, `unpack_batch=lambda batch: (batch[0], None, None)`, "
                   "and explain the class of a probe's `output=` (a linear probe's logits) with `towards=\"runner_up\"`"
                   if views else ""))
        if labels.is_floating_point() or labels.is_complex():  # BCE-style 0./1. targets: resolve_target named `target`
            values = sorted(set(labels[:1000].tolist()))
            raise ValueError(
                f"CounterfactualAudit needs integer class labels in `probe.labels` (the classes to explain towards) but got "
                f"dtype {labels.dtype} (values {values[:4]}{' ...' if len(values) > 4 else ''}); pass labels of class indices, "
                "e.g. `labels.long()`, through `unpack_batch=` (or a `probe=`)"
            )
        self._validate_options(probe, model)

    def _validate_outputs(self, model: nn.Module, probe: Probe, regression: bool, labels: Tensor | None = None) -> None:
        """The model's outputs are class scores [N, C >= 2], not an embedding (the model's kind before the labels':
        a regression's float labels are not the fault) nor per-level logits (:func:`level_outputs`: an ordinal
        head's cumulative logits, whose largest is no rank; ``labels``, the probe's class labels, tell them: warned about,
        the labels of a one-vs-rest classifier being alike)."""
        forward = Forward(model, num_samples=len(probe), **self.model_options(probe))
        with audit_mode(model), torch.no_grad():
            raw = forward.raw(probe.first)
            out = forward.checked(raw, probe.first)
        _check_logits(out)
        levels = None if regression else level_outputs(labels, out, task_model(model, self.output), self.output)
        if levels is not None:  # a guess (a one-vs-rest classifier's labels look alike): warned, not refused
            warnings.warn(
                f"CounterfactualAudit explains a classifier's decision (the smallest change that flips its class, the "
                f"largest output) but {levels}: the largest of them is no rank, and a sample would count as misclassified "
                f"wherever it is not its label; {LEVEL_WAYS_OUT}", UserWarning, stacklevel=outside_package())
        embedding = None if regression else embedding_output(out, model, self.output)
        if embedding is not None:
            raise ValueError(
                f"CounterfactualAudit explains a classifier's decision (the smallest change that flips its class) but the "
                f"model's outputs are an embedding {list(out.shape)} ({embedding}): its largest coordinate is no class to "
                "flip; pass `output=` class scores, e.g. the cosine similarity to each class's centroid "
                "(`output=lambda out: out @ centroids.T`, `centroids` [C, D] of unit rows: the nearest centroid's class)")
        read = None if regression else continuous_distribution_read(model, probe, self.output,
                                                                      ran_outputs(model, probe, raw, out))  # no pass of its own
        if read is not None:  # a Gaussian policy's action means: the largest is force x in one state, force y in another
            raise ValueError(
                f"CounterfactualAudit explains a classifier's decision (the smallest change that flips its class) but the "
                f"model's outputs are {read}, a continuous distribution ({continuous_guess(probe.labels, task_model(model, self.output))}): its largest coordinate is "
                "no class to flip; explain each coordinate k with InputEffectAudit(target=k) or "
                "SobolAudit(target=k, probability=False) (a classifier whose logits are a Normal's mean, a heteroscedastic "
                "one, is explained where the probe holds its integer class labels, a coordinate for each class); coordinate k asked to cross a threshold "
                "t (force k below t, a heteroscedastic regression's target k below t) is two classes by `output=lambda "
                "out: torch.stack([m[:, k] - t, t - m[:, k]], 1)`, `m` the means as your `output=` reads them "
                "(`out.mean`), class 1 below t (`towards=\"runner_up\"` without labels)")

    def _validate_options(self, probe: Probe, model: nn.Module) -> None:
        """``bounds``, ``mask``, ``categorical``/``integer`` and ``feature_names`` against the probe's inputs (a
        one-hot group lying in padding, a padded node's all-zero atom type, unchecked: the search keeps it)."""
        if self.bounds is not None:
            check_bounds(self.bounds, probe.first)
        if self.mask is not None:
            self._check_mask(probe.first)
        discrete = self.categorical is not None or self.integer is not None  # the padding read only where it is needed
        check_discrete(self.categorical, self.integer, probe.first, *check_bounds(self.bounds, probe.first),
                       padding_positions(probe.first, probe.additional_forward_args, model=model) if discrete else None)
        if self.scale is not None:  # one unit per feature, the same for every sample
            check_scale(self.scale, probe.first[:1])
        if self.feature_names is not None and probe.first.dim() == 2:
            check_name_count("feature_names", self.feature_names, probe.first.shape[1], "column")

    def _check_mask(self, x: Tensor) -> None:
        """The mutable mask is one mask for every sample: broadcastable to one probe sample."""
        mask = self.mask
        assert mask is not None
        try:
            ok = torch.broadcast_shapes(mask.shape, (1, *x.shape[1:])) == (1, *x.shape[1:])
        except RuntimeError:
            ok = False
        if not ok:
            raise ValueError(f"Expected argument `mask` broadcastable to one probe sample {[1, *x.shape[1:]]} (one mask "
                             f"for every sample) but got {list(mask.shape)}")

    def run(self, model: nn.Module, probe: Probe, *, max_batch_size: int | None = None) -> AuditResult:
        self.validate(model, probe)
        x = probe.first
        options = self.model_options(probe)
        with audit_mode(model):
            forward = Forward(model, num_samples=len(probe), **options)
            out = forward(x)
            # the misclassified samples are those of the probe's batch; the search runs them in a batch of their own
            with rng_preserved():  # its passes leave the search's draws (an MC-dropout model's) as they were
                check_samples_independent(forward, (x,), out, f"CounterfactualAudit {self.name!r}", alone_route=False)
        _check_logits(out)
        check_class_name_count(self.class_names, int(out.shape[1]))
        pred = out.argmax(1)
        result = AuditResult(self.name)
        result.meta.update(names_meta(self.feature_names, self.class_names))
        result.meta["towards"] = self.towards
        if self.towards == "runner_up":  # the class of the second-highest output: the decision's nearest alternative
            regression = _runner_up_of_regression(self, model, probe, pred, int(out.shape[1]))
            if regression is not None:  # a quantile regressor's largest quantile is no class: warned, noted on the card
                result.meta.setdefault("notes", []).append(regression)
                warnings.warn(f"CounterfactualAudit {self.name!r}: {regression}", UserWarning, stacklevel=outside_package())
            y = out.detach().scatter(1, pred[:, None], float("-inf")).argmax(1)
            # every class but the predicted one -inf: the argmax of such a row is its first class, the predicted one where
            # that is 0 (a counterfactual found with no change); another, ruled-out class instead (named in the note below)
            y = torch.where(y == pred, (pred + 1) % out.shape[1], y)
            idx = torch.arange(min(len(probe), self.max_samples), device=x.device)
        else:
            y = class_indices(probe.labels, task_model(model, self.output)).to(x.device)
            check_class_labels("probe.labels", y, int(out.shape[1]), outputs=out)
            if y.dim() != probe.labels.dim():
                result.meta["labels"] = "argmax of soft labels"
            wrong = (pred != y).nonzero().flatten()
            result.scalars["misclassified_rate"] = float(wrong.numel()) / x.shape[0]
            idx = wrong[: self.max_samples]
        result.scalars["explained"] = float(idx.numel())
        if idx.numel() == 0:
            return result
        sub = probe.subset(idx)
        if self.bounds is not None:  # named by the probe's indices, not by the rows of the explained subset
            mutable = torch.ones(1, dtype=torch.bool) if self.mask is None else self.mask.bool()
            names = self.feature_names if x.dim() == 2 else None
            warn_outside_bounds(x[idx], mutable.to(x.device), *check_bounds(self.bounds, x), rows=idx,
                                what="explained probe samples", names=names,
                                stacklevel=outside_package() + 1)  # at the user's line: one frame below this one's
        # a padded position explained is said in the audit's words (the search's would name its `target_class=`)
        why = ("towards=\"runner_up\" explains each sample's second-largest output, a padded position's in these samples"
               if self.towards == "runner_up" else "the probe's labels name them (towards=\"label\")")
        def padded() -> bool:  # its cut pass runs the model in eval mode, as the search's own
            with audit_mode(model):
                return warn_padded_target(Forward(model, num_samples=len(idx), **self.model_options(sub)), (x[idx],),
                                          out[idx].detach(), y[idx], f"CounterfactualAudit {self.name!r}", why=why)

        with remembered_fit():  # one block: marked where said, the search then checks no padded target again
            say_once_in_block("padded_target", padded)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OutsideBoundsWarning)  # said above, of the probe's rows
                cf = counterfactual_explanation(model, x[idx], y[idx], self.settings, mask=self.mask, bounds=self.bounds,
                                                categorical=self.categorical, integer=self.integer, scale=self.scale,
                                                **self.model_options(sub))
        summary = cf.summary()
        result.scalars["success_rate"] = summary["success_rate"]
        if cf.success.any():
            result.scalars.update(mean_l1=summary["l1"], mean_l2=summary["l2"], mean_sparsity=summary["sparsity"])
        result.tables["counterfactuals"] = [
            {"index": int(i), **({"label": int(y[i])} if self.towards == "label" else {}), "target": int(y[i]),
             "predicted": int(pred[i]), "counterfactual_predicted": int(cf.predicted[j]),
             "success": bool(cf.success[j]), "l1": float(cf.l1[j]), "l2": float(cf.l2[j]), "sparsity": float(cf.sparsity[j])}
            for j, i in enumerate(idx.tolist())
        ]
        missing = self._missing_note(x[idx], idx, cf.success)
        if missing:  # no counterfactual, for a reason the table's rows do not give: said on the card and at the user's line
            result.meta.setdefault("notes", []).append(missing)
            warnings.warn(f"CounterfactualAudit {self.name!r}: {missing}", ProbeContentsWarning, stacklevel=outside_package())
        ruled_out = _ruled_out_note(out.detach()[idx], y[idx], idx, cf.success)
        if ruled_out:  # a class masked with -inf (not yet seen by a class-incremental model): "not found" without a why
            result.meta.setdefault("notes", []).append(ruled_out)
        # the counterfactual points as numbers, which the JSON report keeps (the pictures keep only their shape)
        result.meta["input_shape"] = list(x.shape[1:])
        for row, a, b in zip(result.tables["counterfactuals"], x[idx].detach().flatten(1), cf.counterfactuals.detach().to(x.device).flatten(1)):
            row.update(self._changed(a, b, tabular=x.dim() == 2))
        if x.dim() in (3, 4):
            a, b = x[idx], cf.counterfactuals
            result.meta["counterfactual_inputs"] = "as_given"
            clouds = x.dim() == 3 and reading_clouds()  # figure_kind="points": a point cloud's points and coordinates
            layout = (cloud_layout(x.shape[1:]) if clouds else signal_layout(x.shape[1:])) if x.dim() == 3 else None
            if layout == "last":  # features last [N, T, F]: time runs across
                a, b = a.transpose(1, 2), b.transpose(1, 2)
                result.meta["counterfactual_inputs"] = "transposed"
            result.images["counterfactuals"] = _triptych(a, b)
            if layout is not None:  # a sequence: its largest changes by step and feature (channel), in words
                for row, d in zip(result.tables["counterfactuals"], cf.delta.detach().cpu()):
                    row["changes"] = _step_changes(d, layout, clouds)
        elif x.dim() == 5:  # a volume or video [N, C, D, H, W]: each sample's depth slice (frame) of largest change
            a, b = x[idx], cf.counterfactuals.to(x.device)
            depth = (b - a).abs().sum(dim=(1, 3, 4)).argmax(1)
            rows = torch.arange(len(idx), device=depth.device)
            result.images["counterfactuals"] = _triptych(a[rows, :, depth], b[rows, :, depth])
            result.meta["counterfactual_inputs"] = "depth_slice"
            axis = "frame" if reading_clips() else "depth"  # a clip's frame (figure_kind="frames"), a volume's slice
            for row, d in zip(result.tables["counterfactuals"], depth.tolist()):
                row[axis] = int(d)
        elif x.dim() == 2:  # tabular: the largest changes, by column
            # as one channel over time [M, 1, 1, T]: TensorBoard draws it for figure_kind="sequence" (a univariate series)
            result.images["counterfactuals"] = _triptych(x[idx].unsqueeze(1), cf.counterfactuals.unsqueeze(1))
            result.meta["counterfactual_inputs"] = "columns"
            for row, d in zip(result.tables["counterfactuals"], cf.delta):
                row["changes"] = self._changes(d)
        return result

    def _changed(self, a: Tensor, b: Tensor, tabular: bool) -> dict[str, list]:
        """Where one counterfactual ``b`` differs from its input ``a`` (both flattened): ``changed_elements``, the
        indices into one flattened sample (``meta["input_shape"]``; of tabular inputs the columns, with their
        ``changed_features`` where named), and the ``original_values`` and ``counterfactual_values`` there, so that
        ``x.flatten()[changed_elements] = counterfactual_values`` rebuilds the counterfactual from the report. A missing
        value (NaN) the counterfactual keeps is no change (``NaN != NaN``: it was listed, with NaN for both values)."""
        changed = ((b != a) & ~(a.isnan() & b.isnan())).nonzero().flatten()
        named = {"changed_features": [self.feature_names[c] for c in changed.tolist()]} if tabular and self.feature_names is not None else {}
        return {"changed_elements": changed.tolist(), **named, "original_values": a[changed].tolist(),
                "counterfactual_values": b[changed].tolist()}

    def _missing_note(self, x: Tensor, idx: Tensor, success: Tensor) -> str:
        """The explained samples ``x`` (probe indices ``idx``) without a counterfactual that hold NaN or infinity (missing
        values, which a model may read: ``nan_to_num`` inside): the search's cost of ``x' - x`` is NaN there, so it never
        finds one for them; ``""`` where none. Names them (the first 8), how many, and the columns (tabular: those any of
        them holds such a value in, named as the table's ``changes`` name them: :meth:`_column`) or how many elements
        each holds (the fewest to the most)."""
        flat = ~torch.isfinite(x.detach().flatten(1))
        lost = flat.any(1) & ~success.to(flat.device)
        if not bool(lost.any()):
            return ""
        rows, where = idx[lost.to(idx.device)].tolist(), flat[lost].any(0).nonzero().flatten().tolist()
        if x.dim() == 2:
            what = f"columns {[self._column(c) for c in where]}"  # the table's names (x3 where none given)
        else:  # per sample: the union of their positions would count elements no one sample holds
            fewest, most = (int(n) for n in flat[lost].sum(1).aminmax())
            what = f"{fewest if fewest == most else f'{fewest} to {most}'} of the {flat.shape[1]} elements of each"
        return (f"samples {rows[:8]}{' ...' if len(rows) > 8 else ''} ({len(rows)} of the {len(x)} explained) have no "
                f"counterfactual: they hold NaN or infinity (missing values) in {what}, where the search's cost of a change "
                "is NaN; impute them (e.g. with the value the model reads them as) to explain them")

    def _changes(self, d: Tensor) -> str:
        """The three largest changes of one tabular counterfactual: a column ``name: +0.5``, or a
        switch of a ``categorical`` group ``old → new`` (counted as a change of 1), so that the new
        category is never cut off the list while its old one is shown."""
        grouped = {int(c) for group in self.categorical or () for c in group}
        d = d.masked_fill(d.isnan(), 0.0)  # a missing value kept (NaN - NaN): no change, as in `_changed`
        items = [(float(d[c].abs()), f"{self._column(c)}: {float(d[c]):+.3g}") for c in d.nonzero().flatten().tolist()
                 if c not in grouped]
        for group in self.categorical or ():
            cols = [int(c) for c in group]
            old, new = [c for c in cols if d[c] < 0], [c for c in cols if d[c] > 0]
            if old and new:
                items.append((1.0, f"{self._column(old[0])} → {self._column(new[0])}"))
        items.sort(key=lambda item: -item[0])  # stable: columns in order among equal changes
        return ", ".join(text for _, text in items[:3])

    def _column(self, c: int) -> str:
        """Column ``c``'s name in the table and the notes: its ``feature_names`` entry, else ``x<c>``."""
        return self.feature_names[c] if self.feature_names is not None else f"x{c}"


def _step_changes(d: Tensor, layout: str, clouds: bool = False) -> str:
    """The three largest changes of one sequence's counterfactual ``d`` (``[T, F]`` features last, ``[C, T]`` channels
    first, as :func:`~lightning_causal.audits.group_regions.signal_layout` says) in words, ``"step 103 of feature 2:
    -0.18"``, the largest first (equal ones in the order of the flattened sample): the flat ``changed_elements`` (402 of
    ``[T, 4]``) do not say the step. Of a point cloud (``clouds``, ``[P, D]`` or ``[D, P]`` as
    :func:`~lightning_causal.audits.group_regions.cloud_layout` says), ``"coordinate 2 of point 11: -0.18"``."""
    d = d.masked_fill(d.isnan(), 0.0)  # a missing value kept (NaN - NaN): no change, as in `_changed`
    flat = d.flatten()
    size, order = flat.abs().sort(descending=True, stable=True)  # stable: equal changes in the sample's order
    order = order[:3][size[:3] > 0].tolist()
    width = d.shape[1]
    words = []
    for e in order:
        step, other = (e // width, e % width) if layout == "last" else (e % width, e // width)
        where = (f"coordinate {other} of point {step}" if clouds else
                 f"step {step} of {'feature' if layout == 'last' else 'channel'} {other}")
        words.append(f"{where}: {float(flat[e]):+.3g}")
    return ", ".join(words)


def _ruled_out_note(out: Tensor, target: Tensor, idx: Tensor, success: Tensor) -> str:
    """The explained samples without a counterfactual whose target class the model rules out at the sample (its output
    there is -inf: ``logits.masked_fill(~seen, float("-inf"))`` of a class a class-incremental model has not seen yet),
    named (probe indices ``idx``, the first 8) with their classes; ``""`` where none. The search gets no gradient from
    an output of -inf, so it reaches such a class only where a change of the inputs lifts the mask. The way out fits
    the samples: ``towards="runner_up"`` where another class than the predicted one is finite there; where every
    class but the predicted one is -inf the model predicts no other class there, which no ``towards`` changes (the
    only samples ``towards="runner_up"`` leaves without a finite target).

    Examples:
        >>> out = torch.tensor([[1.0, 0.0, float("-inf")], [0.0, 1.0, float("-inf")]])
        >>> _ruled_out_note(out, torch.tensor([2, 0]), torch.tensor([3, 5]), torch.tensor([False, False]))[:62]
        'samples [3] (1 of the 2 explained) have no counterfactual: the'
        >>> alone = torch.tensor([[1.0, float("-inf"), float("-inf")]])
        >>> _ruled_out_note(alone, torch.tensor([2]), torch.tensor([0]), torch.tensor([False]))[-67:]
        'no counterfactual unless a change lifts the mask (whatever towards)'
    """
    lost = (out.gather(1, target.view(-1, 1)).squeeze(1) == float("-inf")) & ~success.to(out.device)
    if not bool(lost.any()):
        return ""
    rows, classes = idx[lost.to(idx.device)].tolist(), sorted(set(target[lost].tolist()))
    # the predicted class the only one not ruled out: no class to flip to, whatever `towards` picks
    alone = (out.scatter(1, out.argmax(1, keepdim=True), float("-inf")) == float("-inf")).all(1)[lost]
    head = (f"samples {rows[:8]}{' ...' if len(rows) > 8 else ''} ({len(rows)} of the {len(out)} explained) have no "
            f"counterfactual: the model's output for their target class ({', '.join(map(str, classes))}) is -inf there, a "
            "class it rules out (masked with -inf, e.g. not yet seen by a class-incremental model), which no change the "
            "search makes reaches unless it lifts the mask; ")
    if bool(alone.all()):
        return head + ("every class but the predicted one is -inf at these samples: the model predicts no other class "
                       "there, so they have no counterfactual unless a change lifts the mask (whatever towards)")
    advice = "explain the classes the model can predict (a probe of those classes"  # towards="label": runner-ups are alone
    if bool(alone.any()):
        only = [r for r, a in zip(rows, alone.tolist()) if a]
        return head + advice + (f", or towards=\"runner_up\", except for samples {only[:8]}{' ...' if len(only) > 8 else ''} "
                                "where every class but the predicted one is -inf: the model predicts no other class there)")
    return head + advice + ", or towards=\"runner_up\")"


def _runner_up_of_regression(audit: CounterfactualAudit, model: nn.Module, probe: Probe, pred: Tensor,
                             width: int) -> str | None:
    """Why ``towards="runner_up"`` flips no decision of this model, or ``None``: the probe's labels are a regression
    target (:func:`regression_labels`, the model's declared task first) and the flipped outputs are the model's own
    (``output=`` None, a key or an index; a callable is taken as given, as the threshold's two classes
    ``torch.stack([out - t, t - out], 1)`` are). Its largest output, a quantile regressor's highest quantile, a
    forecast's largest horizon, is no class: the smallest change that makes another output largest is a quantile
    crossing. ``pred``: the largest output of each probe sample; ``width``: the model's outputs (labels inside [0, 1] of
    a binary classifier, :func:`soft_binary_targets`, are its soft targets, no regression). Warned, not refused: a
    model whose outputs are classes trained on real-valued targets (a mixture density network's component logits, a
    Q-network) has such a probe too."""
    task = label_task(task_model(model, audit.output))
    if (callable(audit.output) or probe.labels is None or not regression_labels(probe.labels, task=task)
            or soft_binary_targets(probe.labels, width, task=task)):  # a binary classifier's smoothed 0.05/0.95
        return None
    labels = probe.labels
    same = f"; output {int(pred[0])} is the largest on every probe sample" if bool((pred == pred[0]).all()) else ""
    return (f"towards=\"runner_up\" flips the largest of the model's outputs, but the probe's labels are real-valued "
            f"{list(labels.shape)} (a regression?): the largest of a regression's outputs (quantiles, horizons, targets) is "
            f"no class{same}, and the smallest change that makes another output largest (a quantile crossing) explains no "
            "decision. Explain each output with InputEffectAudit(target=k) or SobolAudit(target=k, probability=False); an "
            "output k asked to cross a threshold t is two classes, `output=lambda out: torch.stack([out[:, k] - t, t - "
            "out[:, k]], 1)` (class 1 below t); outputs that are classes (a mixture's component logits, Q-values) say so "
            "by `output=lambda out: ...` (a callable is taken as given) or a probe without labels, `unpack_batch=lambda b: "
            "(b[0], None, None)`")


def _check_logits(out: Tensor) -> None:
    if out.dim() != 2 or out.shape[1] < 2:
        raise ValueError(
            f"CounterfactualAudit explains a classifier's decision and needs logits [N, classes >= 2] but the model "
            f"returned shape {list(out.shape)} (a regression has no class to flip to); a binary classifier with one "
            "logit z can return torch.cat([-z, z], 1); a score asked to cross a threshold t (a risk score below its "
            "median t: a survival model's log-risk) is two classes by `output=lambda out: torch.stack([out - t, t - "
            "out], 1)` of an output [N] (`out[:, 0]` of [N, 1]), class 1 below t (`towards=\"runner_up\"` without labels)")
