"""SobolAudit: global variance-based attributions (Sobol' indices with intervals) of input groups."""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Sequence
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn

from lightning_causal.audits.base import Audit, AuditResult, Probe
from lightning_causal.audits.group_regions import group_key, group_region, region_tag
from lightning_causal.audits.label_task import GUESS_ROWS
from lightning_causal.audits.options import (
    ONE_INPUT_WAYS_OUT,
    check_distinct_tags,
    check_mask_options,
    check_name_count,
    check_names,
    check_target,
    class_label,
    first_row_outputs,
    names_meta,
    single_input_error,
    tag_safe,
    warn_predicted_class_of_regression,
    warn_softmax_of_regression,
)
from lightning_causal.audits.task_warnings import ran_outputs
from lightning_causal.causal.engine.batching import rows_per_pass
from lightning_causal.causal.engine.checks import check_choice, check_int, check_seed
from lightning_causal.causal.engine.forward import Forward, ForwardArgs, OutputSpec
from lightning_causal.causal.engine.groups import (
    broadcast_groups,
    group_mask,
)
from lightning_causal.causal.engine.probe_warnings import ProbeContentsWarning
from lightning_causal.causal.engine.ranking import largest_k
from lightning_causal.causal.engine.state import audit_mode
from lightning_causal.causal.engine.user_frame import outside_package
from lightning_causal.causal.scm.attribute_flip import one_hot_blocks
from lightning_causal.causal.sensitivity.samplers import (
    ClassProbability,
    EmpiricalMarginals,
    GaussianCopula,
    _warn_singular,
    class_probability,
)
from lightning_causal.causal.sensitivity.sobol import (
    ConstantOutputWarning,
    SobolResult,
    check_sobol_options,
    sobol_indices,
)

__all__ = ["SobolAudit"]

SobolSampler = Literal["empirical", "copula"]
_SAMPLERS: tuple[SobolSampler, ...] = get_args(SobolSampler)  # the values `sampler` takes


DRY_RUN_N = 16  # base samples of the dry run (at most the audit's n): it checks the set-up, not the estimate


class SobolAudit(Audit):
    """Sobol' indices of input groups for the probability of one class, with bootstrap intervals.

    The probe's inputs define the input distribution: each group (feature mask, image patch, or
    one element/column) varies independently of the others, as observed: its elements take their
    values in one observed probe row together, so a one-hot block stays one-hot and a patch is a
    patch of one image (:class:`~lightning_causal.causal.sensitivity.samplers.EmpiricalMarginals`
    with ``groups``), or with the probe's rank correlation kept (``sampler="copula"``,
    :class:`~lightning_causal.causal.sensitivity.samplers.GaussianCopula`, where indices are those of the
    Cholesky innovations in column order). For each group ``g`` (feature mask, image patches, or one
    per element/column) it reports ``S_g = Var(E[p | X_g]) / Var p`` (first order, Saltelli 2010) and
    ``S_T,g`` (total order, Jansen 1999) of ``p = P(class target | x)``; ``S_T,g - S_g`` is the share of
    variance from interactions of ``g`` with other groups. Cost: ``(G + 2) n`` forward rows.

    Reports: vectors ``first`` and ``total`` (``[G]``, histograms),
    scalars ``S/<group>``/``ST/<group>`` of the ``top_k`` groups by total order (``<group>``: its
    name in ``feature_names``, else its index, followed where the group has a box by where it lies:
    ``S/17_rows_8-15_cols_0-7`` of an image patch, ``S/9_steps_36-39`` of a window of a signal, ends inclusive;
    ``meta["group_tags"]`` lists those segments, the items of the S and ST charts of the custom-scalars layout) plus ``sum_S`` (1 - sum_S
    is the interaction share) and ``output_variance``, a table ``indices`` (``feature``, the group's name where
    ``feature_names`` are given, ``group``, its index, as in ``InputEffectAudit``'s ``top_groups``; S, S_ci, ST, ST_ci, and where
    the group lies as :class:`~lightning_causal.audits.input_effects.InputEffectAudit`'s ``top_groups`` say it:
    ``steps``, ``depth``, ``rows``, ``cols``, ... of signals, images, volumes and videos)
    sorted by total order (drawn in TensorBoard as bars of S and ST with their intervals,
    ``causal/<name>/intervals/indices``), and for images, volumes and videos ``[N, C, D, H, W]``, sequences and float ``[N, D]`` inputs maps
    ``total``/``first`` ``[1, *input_shape]`` (each element holds its group's index; of ``[N, D]``
    drawn only under ``figure_kind="sequence"``, as a univariate series ``[N, T]``), drawn on one colour scale (``meta["shared_map_scale"]``: both are
    shares of the output variance, so a first-order index of 0.2 must not look as strong as a
    total index of 0.4).

    Args:
        n: base sample size (a power of two; others are rounded up with a warning).
        feature_mask: one integer group id per input element, ``[1, ...]`` (Captum's convention).
        patch_size: square patches for image inputs ``[N, C, H, W]``, cubes for volumes ``[N, C, D, H, W]``.
        target: class whose probability is explained; ``None`` = the class predicted most often on
            the probe at the first audit, kept for the later audits of the fit (and across a resume),
            so that every scalar series and drift value compares one quantity (a head grown since keeps it; one
            that no longer has that class is refused with a message naming ``target=``).
        sampler: ``"empirical"`` (independent groups, each as observed) or ``"copula"`` (every
            element's marginal, joined by the probe's rank correlation; it needs more probe samples
            than varying input elements, else the correlation is singular, the first elements' groups
            take nearly all of the variance, and a ``UserWarning`` says so).
        n_bootstrap: bootstrap resamples for the intervals (0: none, the intervals NaN; 1 is refused).
        confidence: level of the intervals.
        replicates: ``K > 1``: the intervals from ``K`` independently scrambled nets of ``n / K`` points
            (``estimate ± t_{K-1} · sd / √K``), at their level, where the bootstrap of one net is
            several times too wide (a power of two, at most ``n / 2``; ``n_bootstrap`` then only says whether to
            give intervals; see :func:`~lightning_causal.causal.sensitivity.sobol.sobol_indices`). ``meta["intervals"]``
            says which ran: ``"bootstrap B"``, ``"replicates K"`` or ``"none"``.
        top_k: groups reported as scalars: those of largest total order at the first audit, the
            same groups at every later audit (a series without gaps; the table and the vectors
            hold every group).
        probability: explain the softmax probability (True) or the raw output (False). A model
            with one output is read as a binary classifier's logit and explained through its
            sigmoid, with a warning: pass ``False`` for a regression model, and ``output=lambda out: out.float().logit(eps=1e-6)``
            for a model that ends in a sigmoid already. ``meta["explained"]``
            says which quantity was explained.
        seed: seed of the private generator (the global RNG is untouched).
        feature_names: one name per group (per column of tabular data by default), used in the
            scalar tags, the table and the figure; names that give the same tag (``"a b"``, ``"a_b"``) are refused.
        class_names: one name per class (names the explained class in the report and figure).
        output: which tensor of the model's return value holds the logits (see :class:`Audit`).
        name: tag of the audit (default ``"sobol"``).

    The sampled inputs are new points, not probe samples: forward arguments of the probe that hold
    one row per sample (attention masks) cannot follow them and are refused; constant forward
    arguments are passed to every call.

    Examples:
        >>> from lightning_causal.models import MLP
        >>> r = SobolAudit(n=256, top_k=2).run(MLP(3), Probe(torch.randn(64, 3)))
        >>> r.vectors["total"].shape, len(r.tables["indices"]), len(r.scalars)  # S, ST of 2 groups, sum_S, variance
        (torch.Size([3]), 3, 6)
        >>> named = SobolAudit(n=256, top_k=1, feature_names=["age", "income", "hours"]).run(MLP(3), Probe(torch.randn(64, 3)))
        >>> sorted(k for k in named.scalars if k.startswith("S"))[0].split("/")[1] in ("age", "income", "hours")
        True
    """

    def __init__(
        self,
        n: int = 1024,
        feature_mask: Tensor | None = None,
        patch_size: int | None = None,
        *,
        target: int | None = None,
        sampler: SobolSampler = "empirical",
        n_bootstrap: int = 100,
        confidence: float = 0.95,
        replicates: int = 1,
        top_k: int = 5,
        probability: bool = True,
        seed: int = 0,
        feature_names: Sequence[str] | None = None,
        class_names: Sequence[str] | None = None,
        output: OutputSpec = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name, output=output)
        self.feature_names, self.class_names = check_names("feature_names", feature_names), check_names("class_names", class_names)
        check_distinct_tags("feature_names", self.feature_names, "S/<name> and ST/<name>", "group")
        check_int("n_bootstrap", n_bootstrap, minimum=0)
        # sobol_indices' own checks, at construction (else refused only at the first audit): n, replicates (a power of
        # two, at most n / 2), n_bootstrap (1 has no spread), confidence
        check_sobol_options(n, n_bootstrap, confidence, None, replicates)
        check_int("top_k", top_k, minimum=1)
        check_mask_options(feature_mask, patch_size)
        check_target(target)
        check_choice("sampler", sampler, _SAMPLERS)
        check_seed(seed, type_error=TypeError)
        self.n, self.feature_mask, self.patch_size, self.target = n, feature_mask, patch_size, target
        self.sampler, self.n_bootstrap, self.confidence, self.top_k = sampler, n_bootstrap, confidence, top_k
        self.probability, self.seed, self.replicates = bool(probability), seed, replicates
        self._chosen_target: int | None = None  # target=None: the class chosen at the first audit
        self._scalar_groups: list[int] | None = None  # the groups logged as scalars, chosen at the first audit

    def _mask(self, x: Tensor) -> Tensor:
        """Group ids ``[1, *sample_shape]`` shared by every sample: :func:`~lightning_causal.causal.engine.groups.group_mask`
        (as every audit resolves ``feature_mask=`` / ``patch_size=``; a mask of fewer dimensions right-aligned, ``[H, W]``
        for ``[N, C, H, W]``), one mask for all samples: a mask of the input's dimensions whose first is not 1, or of
        more dimensions, is refused in those words before group_mask's, which would allow ``[1 or N, ...]``."""
        given = self.feature_mask
        if isinstance(given, Tensor) and (given.dim() > x.dim() or given.dim() == x.dim() and given.shape[0] != 1):
            raise ValueError(
                f"Expected argument `feature_mask` of shape [1, ...] shared by all samples of {list(x.shape)} "
                f"but got {list(given.shape)}"
            )
        return group_mask(x, given, self.patch_size).expand(1, *x.shape[1:])

    def validate(self, model: nn.Module, probe: Probe) -> None:
        if isinstance(probe.inputs, tuple):
            raise single_input_error("SobolAudit", probe.inputs, forward_args=False)
        if len(probe) < 2:
            raise ValueError(f"SobolAudit needs a probe of at least 2 samples but got {len(probe)}")
        if probe.first.dim() < 2:  # else EmpiricalMarginals refuses an argument `data` the user never passed
            raise ValueError(f"SobolAudit needs inputs [N, D, ...] (samples, then features) but the probe's are of shape "
                             f"{list(probe.first.shape)}; one input has no share to apportion (its S and ST are 1): for one value "
                             "per sample, audit a model that reads x.unsqueeze(1)")
        x = probe.first.detach()
        bad = (~torch.isfinite(x)).reshape(len(probe), -1).any(1) if x.is_floating_point() else None  # [N] too
        if bad is not None and bool(bad.any()):  # else EmpiricalMarginals refuses an argument `data` the user never passed
            rows = bad.nonzero().flatten().tolist()
            raise ValueError(f"SobolAudit draws its inputs from the probe's values, which must be finite, but samples "
                             f"{rows[:8]}{' ...' if len(rows) > 8 else ''} of {len(probe)} hold NaN or infinity; drop or impute them")
        if ForwardArgs(probe.additional_forward_args, len(probe)).tensors():  # a set every sample reads whole: mark_whole
            raise ValueError(f"SobolAudit draws new inputs, so {ONE_INPUT_WAYS_OUT}. A forward argument that every sample "
                             f"reads whole (an in-context learner's context set and its labels, a few-shot support set) "
                             f"whose first dimension equals the probe's {len(probe)} samples by chance is passed whole "
                             "with `mark_whole((x_ctx, y_ctx), [0, 1])` (its places among the arguments' tensors; "
                             "`from lightning_causal.causal import mark_whole`), and SobolAudit takes it; so is a "
                             "denoiser's timesteps `t` fixed at one noise level, `mark_whole((torch.full((1,), 25),), [0])` "
                             "(for a `forward` that broadcasts a `t` of one row), every probe sample's `x_t` noised at that level "
                             "(x_t drawn at per-sample levels would be explained as if at that one): the indices of "
                             "`x_t` at that level")
        mask = self._mask(probe.first)
        if (mask < 0).any() or (torch.bincount(mask.flatten().cpu()) == 0).any():
            raise ValueError("Expected argument `feature_mask` to number its groups 0..G-1 without gaps")
        check_name_count("feature_names", self.feature_names, int(mask.max()) + 1, "group")
        target = self.target if self.target is not None else self._chosen_target
        if target is not None:
            with audit_mode(model), torch.no_grad():
                out = Forward(model, **self.model_options(probe))(probe.first[:1])
            width = 1 if out.dim() == 1 else int(out.shape[1])
            allowed = max(width, 2 if self.probability else 1)  # one logit: the two classes of its sigmoid
            if self.target is not None and self.target >= allowed:
                raise ValueError(f"Expected argument `target` to be a class of the model, 0 to {allowed - 1}, but got {self.target}")
            if target >= allowed:  # the class kept from the first audit, of a head that has shrunk since (or a resume's)
                raise ValueError(
                    f"SobolAudit {self.name!r} explains class {target}, chosen at its first audit (`target=None`) and kept so "
                    f"that its series compare one quantity, but the model now returns {width} output(s), classes 0 to "
                    f"{allowed - 1} (its head changed since); pass `target=` a class of the new head (a new audit name, "
                    "`name=`, starts its series afresh)")

    def _warn_one_hot(self, x: Tensor, groups: Tensor) -> None:
        """A one-hot block of a tabular probe drawn column by column gets rows no encoder produces (all
        zeros, several ones), silently: the copula draws every column's marginal, the empirical sampler
        every group's (``groups``, one id per column), so there only a block split over groups."""
        if x.dim() != 2:
            return
        ids = groups.reshape(-1).tolist()
        for columns in one_hot_blocks(x):
            if self.sampler == "empirical" and len({ids[c] for c in columns}) == 1:
                continue  # drawn together, as one observed row's block
            per_column = self.feature_names is not None and len(self.feature_names) == x.shape[1]  # names are per group
            names = [self.feature_names[c] for c in columns] if per_column else columns
            if self.sampler == "copula":
                warnings.warn(
                    f"SobolAudit {self.name!r} with sampler='copula' draws each column on its own, so the one-hot block "
                    f"{names} gets rows no encoder produces (all zeros, or several ones) and the indices explain the model "
                    "off its data; sampler='empirical' with the block as one group (feature_mask) draws it as observed",
                    ProbeContentsWarning, stacklevel=outside_package())
            else:
                warnings.warn(
                    f"SobolAudit {self.name!r} with sampler='empirical' draws the one-hot block {names} in "
                    f"{len({ids[c] for c in columns})} groups, each on its own, so it gets rows no encoder produces (all "
                    "zeros, or several ones) and the indices explain the model off its data; pass a `feature_mask` that "
                    f"gives the columns {columns} one group id: the block is then drawn as observed, one category at a time",
                    ProbeContentsWarning, stacklevel=outside_package())
            return

    def dry_run(self, model: nn.Module, probe: Probe) -> AuditResult | None:
        r"""The run on 2 probe samples (:meth:`Audit.dry_run`) with at most :data:`DRY_RUN_N` base samples (the
        estimate's ``(G + 2) n`` evaluations do not shrink with the probe), whose copula warnings would speak of those 2
        (a correlation of D columns from 2 samples is always singular; two binary columns can look one-hot
        on 2 rows; an output constant over inputs drawn from 2 samples): they are checked on the whole probe instead,
        and the 2-sample run is silent about them (they, and the core's singular-correlation warning, are
        ``ProbeContentsWarning``\ s, which :meth:`Audit.dry_run` ignores).

        Args:
            model: the model under audit, as in :meth:`Audit.run`.
            probe: the probe, as in :meth:`Audit.run`.
        """
        x = probe.first.detach()
        data = x if x.is_floating_point() else x.double()
        if x.dim() == 2 and not isinstance(probe.inputs, tuple):  # a bad mask or inputs: the run below says so
            with contextlib.suppress(ValueError, TypeError):
                self._warn_one_hot(data, self._mask(x))
        if self.sampler == "copula":
            _warn_singular(data.reshape(data.shape[0], -1))
        # the estimate's cost is (G + 2) n evaluations whatever the probe's size: at the audit's n the dry run cost as
        # much as the run it checks (44 s and 45 s for 64 tubes of 8 clips [1, 16, 32, 32], n=64, one thread)
        n = self.n
        self.n = min(n, max(DRY_RUN_N, 2 * self.replicates))
        try:
            return super().dry_run(model, probe)  # its ProbeContentsWarnings, of the 2 samples, ignored
        finally:
            self.n = n

    def analyse(self, model: nn.Module, probe: Probe, max_batch_size: int | None = None) -> SobolResult:
        """The :class:`~lightning_causal.causal.sensitivity.sobol.SobolResult` behind :meth:`run`.

        Args:
            model: the model under audit, as in :meth:`Audit.run`.
            probe: the probe, as in :meth:`Audit.run`.
            max_batch_size: rows per call of the model; ``None``: chosen from the memory budget.
        """
        return self._analyse(model, probe, max_batch_size)[0]

    def _analyse(self, model: nn.Module, probe: Probe, max_batch_size: int | None) -> tuple[SobolResult, int, str, str]:
        """The result, the explained class, what was explained (``ClassProbability.explained``) and, where
        the explained output did not vary, why (else "")."""
        self.validate(model, probe)
        x = probe.first.detach()
        mask = self._mask(x)
        data = x if x.is_floating_point() else x.double()  # category codes: drawn as observed values, cast back per call
        self._warn_one_hot(data, mask)
        source = GaussianCopula(data) if self.sampler == "copula" else EmpiricalMarginals(data, groups=mask.flatten())
        with audit_mode(model):  # as every audit: the model's own generators and attributes put back too
            options = self.model_options(probe)
            target = self.target if self.target is not None else self._chosen_target
            if target is None:
                warn_predicted_class_of_regression(f"SobolAudit {self.name!r}", probe.labels, first_row_outputs(model, probe, self.output, rows=GUESS_ROWS),
                                                   per_sample=False, model=model, output=self.output)
                func = class_probability(model, reference=x, input_shape=x.shape[1:], probability=self.probability, **options)
            else:
                func = class_probability(model, target, input_shape=x.shape[1:], probability=self.probability, **options)
            if not x.is_floating_point():
                func.input_dtype = x.dtype
            with audit_mode(func.model):
                rows = rows_per_pass(func.model, (x,), max_batch_size, forward=lambda *t, rows: func.forward(*t))
            with warnings.catch_warnings():  # said below in the audit's words: the user passed no `func`
                warnings.simplefilter("ignore", ConstantOutputWarning)
                res = sobol_indices(func, source, self.n, mask.flatten(), n_bootstrap=self.n_bootstrap, max_batch_size=rows,
                                    seed=self.seed, confidence=self.confidence, names=self.feature_names,
                                    replicates=self.replicates)
            cause = self._constant_cause(x, func) if res.variance == 0.0 else ""
        if cause:
            warnings.warn(f"SobolAudit {self.name!r}: {cause}; every index is set to 0", ProbeContentsWarning,
                          stacklevel=outside_package())
        if func.explained == "sigmoid probability":
            warnings.warn(
                f"SobolAudit {self.name!r} explains sigmoid(output) of a model with one output, i.e. a binary "
                "classifier's probability; for a regression model pass `probability=False` to explain the output itself, and "
                "for a model that ends in a sigmoid already (it returns the probability) pass `output=lambda out: out.float().logit(eps=1e-6)` "
                "(the logit of the probability: its sigmoid gives the probability back; eps: a saturated 0 or 1 is no infinite "
                "logit), else the probability gets a second sigmoid",
                UserWarning, stacklevel=outside_package(),
            )
        if func.explained == "softmax probability":  # on the first 64 rows the analysis ran (KEPT_ROWS): a detector's
            warn_softmax_of_regression(f"SobolAudit {self.name!r}", probe.labels, "`probability=False`", model=model,
                                       outputs=ran_outputs(model, probe, *func.first_return, func.first_outputs),
                                       output=self.output, probe=probe)
        return res, func.target, func.explained, cause

    @staticmethod
    def _constant_cause(x: Tensor, func: ClassProbability) -> str:
        """Why the explained output did not vary over the drawn inputs: the probe (identical samples
        give one input to draw), a probability saturated at 0 or 1 in the model's dtype while its logit
        varies over the probe, or the model."""
        explained = func.explained
        if torch.equal(x, x[:1].expand_as(x)):
            return f"the probe's {x.shape[0]} samples are identical, so every drawn input is that sample and the {explained} cannot vary"
        if func.probability and x.is_floating_point():
            p = func(x.flatten(1))
            raw = copy.copy(func)
            raw.probability = False
            one = func.outputs == 1  # a binary classifier's one logit z: p_1 = sigmoid(z), p_0 = sigmoid(-z); its raw output is column 0
            if one:
                raw.target = 0
            z = raw(x.flatten(1))
            if bool(((p == 0) | (p == 1)).all()) and bool((z != z[0]).any()):
                what = "its one output (the logit)" if one else "its output for the class"
                return (f"the {explained} of class {func.target} is {float(p[0]):g} on every input drawn from the probe, saturated in "
                        f"{str(p.dtype).removeprefix('torch.')}: {what} varies over the probe (from {float(z.min()):.4g} "
                        f"to {float(z.max()):.4g}) but the probability rounds to {float(p[0]):g}; pass `probability=False` "
                        + ("(and `target=None` or 0: the model's one output) " if one else "") + "to explain that output")
        return f"the {explained} is constant over the inputs drawn from the probe (a model whose output ignores them)"

    def state_dict(self) -> dict[str, Any]:
        """The class chosen for ``target=None`` and the groups logged as scalars, fixed at the first audit."""
        state: dict[str, Any] = {}
        if self._chosen_target is not None:
            state["target"] = self._chosen_target
        if self._scalar_groups is not None:
            state["scalar_groups"] = list(self._scalar_groups)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._chosen_target = state.get("target")
        groups = state.get("scalar_groups")
        self._scalar_groups = None if groups is None else [int(g) for g in groups]

    def run(self, model: nn.Module, probe: Probe, *, max_batch_size: int | None = None) -> AuditResult:
        x = probe.first
        res, target, explained, cause = self._analyse(model, probe, max_batch_size)
        result = AuditResult(self.name)
        if cause:  # the report and the text card say why every index is 0
            result.meta["notes"] = [f"{cause}; every index is 0"]
        first, total = res.first.float(), res.total.float()
        result.vectors.update({"first": first, "total": total})
        order = largest_k(total)[1].tolist()  # equal indices (the 0s of ignored groups): lower group id first
        if self.target is None:
            self._chosen_target = int(target)
        if self._scalar_groups is None or max(self._scalar_groups) >= len(order):
            self._scalar_groups = order[: self.top_k]
        rows, mask = res.to_rows(), self._mask(x)
        regions = {g: group_region(mask, g, x) for g in order}  # where: steps, rows, ... ({} for columns, tokens)
        # unnamed groups with a box are tagged by where they lie (S/17_rows_8-15_cols_0-7), not by a bare id
        tags = {g: tag_safe(res.names[g]) if self.feature_names is not None else region_tag(res.names[g], regions[g])
                for g in self._scalar_groups}
        for g in self._scalar_groups:  # the estimates as computed (float64), as the table has them
            result.scalars[f"S/{tags[g]}"] = float(res.first[g])
            result.scalars[f"ST/{tags[g]}"] = float(res.total[g])
        if any(regions[g] for g in self._scalar_groups):  # items of the S and ST charts in the custom-scalars layout
            result.meta["group_tags"] = [tags[g] for g in self._scalar_groups]
        result.scalars["sum_S"] = float(res.first.sum())
        result.scalars["output_variance"] = res.variance
        # named as every audit names an input group (group_key: group, the index; feature, the name where given)
        result.tables["indices"] = [{**group_key(g, self.feature_names), **{k: v for k, v in rows[g].items() if k not in ("group", "feature")},
                                     **regions[g]} for g in order]
        if x.dim() in (3, 4, 5) or (x.dim() == 2 and x.is_floating_point()):  # [N, D]: drawn under figure_kind="sequence"
            shape = torch.Size((1, *x.shape[1:]))
            result.maps["total"] = broadcast_groups(total.unsqueeze(0).to(x.device), mask, shape)
            result.maps["first"] = broadcast_groups(first.unsqueeze(0).to(x.device), mask, shape)
            result.meta["shared_map_scale"] = True  # both maps are shares of the output variance: one colour scale
        result.meta.update(
            groups=len(res.names), n=res.n, n_evaluations=res.n_evaluations, method=res.method,
            sampler=self.sampler, target=target, confidence=res.confidence, explained=explained,
            # which intervals the table's S_ci/ST_ci are: a bootstrap of one net (conservative for scrambled nets) or
            # the spread of K independent nets (at their level); "none" without intervals
            intervals=("none" if self.n_bootstrap == 0 else f"replicates {self.replicates}" if self.replicates > 1
                       else f"bootstrap {self.n_bootstrap}"),
        )
        if explained == "raw output":  # "output 0" of several (horizon 0 of a forecast), not "the output"
            out = first_row_outputs(model, probe, self.output)()
            result.meta["outputs"] = int(out.shape[1]) if out.dim() == 2 else 1
        result.meta.update(names_meta(self.feature_names, self.class_names))
        if self.class_names is not None:
            result.meta["target_name"] = class_label(self.class_names, target)
        return result

