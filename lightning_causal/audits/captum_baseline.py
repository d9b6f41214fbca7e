"""CaptumBaseline: Captum attributions beside the causal input effects, on the same feature groups.

Answers, per epoch and per method: do causal and gradient explanations agree, and which one is
more faithful and more stable on this model? Every metric of
:mod:`lightning_causal.baselines.metrics` is applied identically to the causal effects and to each
Captum map (``captum_metrics.py``); ``captum_report.py`` writes the result's keys and table and
``captum_checks.py`` resolves the methods.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, get_args

import torch
from torch import Tensor, nn

from lightning_causal.audits.base import Audit, AuditResult, Probe, layer_names
from lightning_causal.audits.captum_checks import check_token_options, resolve_methods
from lightning_causal.audits.captum_metrics import (
    Explainer,
    agreement,
    curve_score,
    faithfulness,
    nan_score_rows,
    note_flat_curves,
    note_nan_scores,
    overlap_k,
    reference_metrics,
    stability,
)
from lightning_causal.audits.captum_report import (
    noisy_codes_named,
    note_no_spread,
    tunnel_zeros,
    warn_layer_unreached,
    warn_surrogate_gradient,
    warn_without_gradient,
    write_comparison,
)
from lightning_causal.audits.category_codes import code_columns
from lightning_causal.audits.input_effects import (
    baseline_text,
    probe_groups,
    real_groups,
    real_mean,
    warn_one_hot_interventions,
)
from lightning_causal.audits.options import (
    check_baseline,
    check_mask_options,
    check_name_count,
    check_names,
    check_target,
    names_meta,
    single_input_error,
    task_model,
    warn_predicted_class_of_regression,
    warn_softmax_of_regression,
)
from lightning_causal.baselines import metrics as M
from lightning_causal.baselines.captum_methods import (
    LAYER_METHOD_NAMES,
    MethodLike,
    MethodSpec,
    attribute,
    layer_attribute,
    tunnel_stdevs,
)
from lightning_causal.baselines.input_layer_methods import input_layer_attribute
from lightning_causal.baselines.method_specs import TUNNEL_DEFAULTS, LayerMethod
from lightning_causal.causal.effects.input_effects import input_effects
from lightning_causal.causal.effects.unit_effects import unit_effects
from lightning_causal.causal.engine.batching import remembered_fit, say_once_in_block
from lightning_causal.causal.engine.checks import (
    check_choice,
    check_float,
    check_int,
    check_seed,
    check_type,
)
from lightning_causal.causal.engine.forward import Forward, OutputSpec
from lightning_causal.causal.engine.groups import aggregate_to_groups, broadcast_groups
from lightning_causal.causal.engine.input_noise import code_elements, codes_kept_note, element_sd
from lightning_causal.causal.engine.input_sites import check_site
from lightning_causal.causal.engine.interventions import resolve_module
from lightning_causal.causal.engine.layer_calls import calls_counted
from lightning_causal.causal.engine.log_probabilities import warn_saturated_log_probs
from lightning_causal.causal.engine.noise import GeneratorWatch
from lightning_causal.causal.engine.state import audit_mode, resolve_target
from lightning_causal.causal.engine.token_ids import (
    INDEX_DTYPES,
    embedding_readers,
    special_token_baseline,
)
from lightning_causal.causal.engine.units import per_layer_layouts

__all__ = ["CaptumBaseline", "CompareSettings"]

_DEFAULT_NAME = "captum_baseline"  # its `compare/<M>/...` tags carry no audit name; another name= is put in them


@dataclass
class CompareSettings:
    """How explanations are compared (shared by every method).

    Args:
        steps: steps of the deletion/insertion curves (default ``min(G, 32)``).
        score: ``"auto"``, ``"softmax"`` or ``"raw"``: what the curves record (see
            :func:`~lightning_causal.baselines.metrics.perturbation_curve`).
        noise_fraction: stability noise σ as a share of each input element's standard deviation over the probe's
            samples (a column of a table, a pixel; when ``noise_sigma`` is unset; an element constant over the
            probe, such as an image's blank border, gets none; a probe of which no element varies, one sample, gets
            no ``stability`` nor ``sensitivity_max``, with a note: give ``noise_sigma``), also the radius of
            ``sensitivity_max``; for token ids, the share of
            tokens the stability perturbation replaces (at least one of each sample).
        stability_repeats: noise draws averaged by the stability metric.
        absolute: rank agreement and stability on |scores| (magnitudes, as Adebayo et al. 2018)
            instead of signed scores. Deletion/insertion always rank by signed score.
        reference_metrics: also compute Captum's ``sensitivity_max`` and ``infidelity``.
        n_perturb_samples: perturbations per sample of the reference metrics.
        layer_method: Captum layer method set beside ``unit_effects`` for ``layers``: ``"LayerConductance"``,
            ``"LayerIntegratedGradients"``, ``"LayerGradientXActivation"`` or ``"LayerActivation"``.
        special_tokens: token ids that nothing replaces in token inputs: neither the causal effects,
            Captum's baselines (``FeatureAblation``, the layer methods' reference embeddings), the
            deletion/insertion curves nor the stability perturbation (``[CLS]``, ``[SEP]``, pad; the
            ``</s>`` that BART and T5 classifiers must read). A group of them only scores 0 under every
            method and is left out of the metrics, as padding is; the baseline token and positions whose
            ``attention_mask`` is 0 are never replaced either.
        token_pool: where the stability perturbation of integer inputs draws its replacements:
            ``"probe"`` (any eligible token of the probe: words of one vocabulary) or
            ``"position"`` (the codes of the same column in other probe samples: categorical
            columns ``[N, D]``, each with codes of its own).

    Examples:
        >>> CompareSettings(steps=8).steps, CompareSettings().score
        (8, 'auto')
        >>> CompareSettings(score="logits")
        Traceback (most recent call last):
            ...
        ValueError: Expected argument `score` to be one of ['auto', 'softmax', 'raw'] but got 'logits'
    """

    steps: int | None = None
    score: M.CurveScore = "auto"
    noise_fraction: float = 0.1
    stability_repeats: int = 1
    absolute: bool = True
    reference_metrics: bool = False
    n_perturb_samples: int = 4
    layer_method: LayerMethod = "LayerConductance"
    special_tokens: Sequence[int] = ()  # any sequence of ids; __post_init__ makes it a tuple
    token_pool: M.TokenPool = "probe"

    def __post_init__(self) -> None:
        self.special_tokens = tuple(self.special_tokens)
        if not all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in self.special_tokens):
            raise ValueError(f"Expected argument `special_tokens` to be non-negative token ids but got {self.special_tokens!r}")
        check_int("steps", self.steps, minimum=1, none_ok=True)
        check_int("stability_repeats", self.stability_repeats, minimum=1)
        check_int("n_perturb_samples", self.n_perturb_samples, minimum=1)
        check_choice("score", self.score, get_args(M.CurveScore))
        check_float("noise_fraction", self.noise_fraction, minimum=0.0, open_min=True)
        check_choice("layer_method", self.layer_method, LAYER_METHOD_NAMES)
        check_choice("token_pool", self.token_pool, get_args(M.TokenPool))


class CaptumBaseline(Audit):
    """Captum attributions beside the causal effects δ_g(x) = f_t(x) − f_t(x | do(x_g := b)).

    Groups come from ``feature_mask``, ``patch_size`` or one per input element, exactly as in
    :class:`~lightning_causal.audits.input_effects.InputEffectAudit`; both explanations use the
    same groups, baseline ``b`` and target (the class predicted on the clean probe unless
    ``target`` is given). A Captum map is reduced to groups by summing each group (by its group
    value for ``FeatureAblation``/``ShapleyValueSampling``, which already attribute groups).

    Result, with ``<M>`` a method label (``"IntegratedGradients"``, ``"NoiseTunnel-Saliency"``):

    - ``maps``: ``"causal"`` and ``"<M>"``, ``[N, *input]``: group values broadcast over the input,
      so the renderer draws input | causal | each method side by side.
    - ``scalars`` ``compare/<M>/{spearman,kendall,topk}``: agreement with the causal ranking
      (per-sample Spearman ρ, Kendall τ_b, top-k overlap, averaged over samples where defined);
      ``compare/<M>/{deletion_auc,insertion_auc,stability}``: the method's faithfulness and
      stability, and the causal explanation's own under the plain keys ``deletion_auc``,
      ``insertion_auc``, ``stability`` (logged as ``causal/<audit>/<metric>``, so TensorBoard's
      custom-scalars chart of a metric holds causal and every method together).
      ``compare/<M>/{sensitivity_max,infidelity}`` (and the plain keys for causal) when
      ``settings.reference_metrics`` (``captum/<M>/...`` before: that sorted before ``causal/`` in TensorBoard). Per layer of ``layers``:
      ``compare/<layer method>-<layer>/{spearman,kendall,topk}`` between ``unit_effects`` and the
      Captum layer attribution. These keys are logged as they are, beside every other audit's; an
      audit given another ``name=`` puts it before the method, ``compare/<name>:<M>/...``, so that two ``CaptumBaseline`` audits of one run (two patch sizes,
      say) never log the same tag (one would silently replace the other).
    - ``curves``: ``{"deletion"|"insertion": {"x": fractions, "causal": [...], "<M>": [...]}}``
      (means over the probe).
    - ``vectors`` ``mean_abs/<causal|M>`` (mean |score| per group); ``tables["comparison"]`` (one row per method, the causal one last
      with ``None`` for its rank agreement with itself);
      ``meta["method_seconds"]`` per explanation (the ``seconds`` column of the table; ``meta["seconds"]``, as every
      audit's, is the audit's own time in the callback's and ``audit_model``'s results); ``meta["calls/<layer>"]`` for a layer of ``layers`` that runs several times per
      forward pass (a shared encoder), whose Captum layer method reads the last call where the causal effects set every
      call, as the notes say; ``meta["baseline"]`` (``"0"``, ``"id 103"``, as ``InputEffectAudit``'s, where
      ``baseline`` is one value) with ``meta["baseline_maps"] = ["causal"]``: the figures say the causal map's effects
      are against each group set to it (the attribution methods' maps are no set-to-``b`` effects).

    Deletion AUC: lower is more faithful; insertion AUC: higher is more faithful; stability
    (Spearman between the explanations of x and x + ε): higher is more stable. The areas are those
    of what the curves record, ``meta["curve_score"]``: the explained class's probability (softmax,
    in [0, 1]) or the raw output (``score="raw"``, or ``"auto"`` on a model of one output: a logit or
    a regression's value, or a probability where every value lies in [0, 1], a sigmoid's or the best probability an
    ``output=`` reads: :func:`~lightning_causal.audits.captum_metrics.curve_score`), whose areas are in the output's
    units, comparable between the explanations of one audit but not across models or, a logit's, as probabilities.

    Token ids ``[N, T]`` (text): groups are positions (or words, by a ``feature_mask`` function of the ids), ``baseline``
    is a token id (pad or ``[MASK]``) that deletion/insertion put in place of removed tokens, and
    the methods are Captum's layer methods on ``input_layer`` (the word embeddings:
    ``LayerIntegratedGradients``, ``LayerGradientXActivation``, ``LayerFeatureAblation``; see
    :mod:`~lightning_causal.baselines.input_layer_methods`), set beside the causal effects of the
    same layer (``input_effects(..., input_layer=...)``, the baseline token's embedding as
    reference); the probe's ``attention_mask`` is passed through. Stability replaces a random
    ``settings.noise_fraction`` share of the tokens, at least one of each sample (never special tokens, the
    baseline token or padding), by other tokens drawn from the probe (:func:`~lightning_causal.baselines.metrics.token_stability`).
    Groups lying entirely in padding (``attention_mask`` 0: effect exactly 0 by design, see
    :func:`~lightning_causal.audits.input_effects.real_groups`) are left out of every metric per
    sample: the rankings of agreement and stability are over the real groups, the curves rank and
    replace only them (``valid=``), and ``mean_abs/<label>`` averages each group over the samples
    where it is real; so padding the same sentences to another length changes no metric.

    Args:
        methods: Captum methods: names (or Captum's classes, ``captum.attr.IntegratedGradients``, for their
            names), ``"NoiseTunnel(<name>)"`` or ``(name, options)`` pairs
            (:func:`~lightning_causal.baselines.captum_methods.resolve_method`).
        feature_mask: integer group ids broadcastable to one input ``[1, ...]``, or a function of
            the probe's inputs ``[N, ...]`` that returns them, ``[1, ...]`` or one mask per sample
            ``[N, ...]`` (per-sample groups: word pieces grouped into words, group ``g`` being each
            sentence's ``g``-th word), as in :class:`~lightning_causal.audits.input_effects.InputEffectAudit`
            (:func:`~lightning_causal.audits.input_effects.probe_groups`). Every explanation of a
            sample is reduced to that sample's own groups, and perturbed inputs (stability,
            sensitivity) keep the groups of the probe sample they perturb.
        patch_size: square patches for image inputs ``[N, C, H, W]``, cubes for volumes ``[N, C, D, H, W]``.
        baseline: ``b`` of the causal effects, of the deletion/insertion curves and of Captum's
            ``baselines``: a number, or a tensor broadcastable to the inputs; for token ids (int64, int32) an int (a
            token id); for uint8 pixels, int8/int16 samples and bool masks that the model casts inside an int, or an
            integer tensor (a per-pixel reference image, ``mean_image.round().to(torch.uint8)``). The stability perturbation of
            integer inputs leaves the elements at their baseline as they are (the baseline token; with a
            per-pixel baseline each pixel that equals its own baseline value) and draws no replacement from them.
        target: class to explain; ``None`` = the class predicted on each clean probe sample.
        top_k: groups (and units of ``layers``) compared by the top-k overlap, capped at one less than
            their number (per sample: its real groups, with padding): a top-k holding all of them is
            shared by any two rankings (overlap 1.0).
        noise_sigma: stability noise σ in the input's units, the same for every element (default
            ``settings.noise_fraction`` standard deviations of each input element over the probe's samples); under
            either, category codes kept in a float column and cast inside the model (``nn.Embedding(x[:, j].long())``,
            found on the clean pass) take none, with a note naming them.
        method_options: ``{method label: options}`` merged over ``methods``' options (a tunnel's key may be
            written ``"NoiseTunnel(<name>)"``, as in ``methods``, or as its label ``"NoiseTunnel-<name>"``).
        layers: hidden layers whose ``unit_effects`` are set beside ``settings.layer_method``
            (module names, or ``"<module>:input"``).
        unit_dim: the dimension that indexes the units of ``layers``, one value or a mapping
            layer -> value (``-1`` for the neurons of ``[N, T, D]`` layers), as in ``unit_effects``.
        num_heads: split the unit dimension of ``layers`` into heads (a unit is a head), one value
            or a mapping layer -> value, as in ``unit_effects``.
        input_layer: module whose output the layer methods attribute and the causal effects
            intervene on (e.g. ``"bert.embeddings.word_embeddings"``); needed by layer methods.
        settings: :class:`CompareSettings`.
        special_tokens: token ids that nothing replaces (``[CLS]``, ``[SEP]``, pad), as
            :class:`~lightning_causal.audits.input_effects.InputEffectAudit` takes them; the same as
            ``settings=CompareSettings(special_tokens=...)`` (where both are given, they must agree).
        seed: private seed of every random draw (Captum's randomised methods, noise).
        feature_names: one name per feature group (per column of tabular data by default), used in
            the figures and the report.
        class_names: one name per class of the model's output (to say which class is explained).
        vocabulary: for token inputs, the word of each token id (``vocabulary[id]``), shown on the
            token strips.
        output: which tensor of the model's return value is explained, by the causal effects and by
            every Captum method (see :class:`Audit`).
        name: tag of the audit (default ``"captum_baseline"``).

    Raises:
        ValueError: unknown method or option (valid ones listed), bad argument values.

    Examples:
        >>> import torch
        >>> from lightning_causal.models import MLP
        >>> audit = CaptumBaseline(methods=("IntegratedGradients", "Saliency"), top_k=2)
        >>> result = audit.run(MLP(4), Probe(torch.randn(8, 4)))
        >>> sorted(result.maps), "compare/Saliency/deletion_auc" in result.scalars
        (['IntegratedGradients', 'Saliency', 'causal'], True)
    """

    def __init__(
        self,
        methods: Sequence[MethodLike] = ("IntegratedGradients", "Saliency"),
        feature_mask: Tensor | Callable[[Tensor], Tensor] | None = None,
        patch_size: int | None = None,
        baseline: float | Tensor = 0.0,
        *,
        target: int | None = None,
        top_k: int = 5,
        noise_sigma: float | None = None,
        method_options: Mapping[str, Mapping[str, Any]] | None = None,
        layers: Sequence[str] = (),
        input_layer: str | None = None,
        settings: CompareSettings | None = None,
        seed: int = 0,
        feature_names: Sequence[str] | None = None,
        class_names: Sequence[str] | None = None,
        vocabulary: Sequence[str] | None = None,
        output: OutputSpec = None,
        name: str | None = None,
        unit_dim: int | Mapping[str, int] | None = None,
        num_heads: int | Mapping[str, int] | None = None,
        special_tokens: Sequence[int] | None = None,
    ) -> None:
        super().__init__(name, output=output)
        self.feature_names, self.class_names = check_names("feature_names", feature_names), check_names("class_names", class_names)
        self.vocabulary = check_names("vocabulary", vocabulary)
        self.specs: list[MethodSpec] = resolve_methods(methods, method_options)
        layer = [s.label for s in self.specs if s.layer]
        if input_layer is None and layer:  # a Captum user's LayerIntegratedGradients is often of a hidden layer
            hidden = layer[0] if layer[0] in LAYER_METHOD_NAMES else "LayerConductance"
            raise ValueError(
                f"Expected argument `input_layer` (e.g. the word embeddings) for the layer methods {layer}: they attribute "
                "the output of the input layer of token ids, per position; for the units of a hidden layer pass "
                f"layers=[...] and settings=CompareSettings(layer_method={hidden!r}) (one of {list(LAYER_METHOD_NAMES)})")
        check_type("input_layer", input_layer, str, none_ok=True)
        self.input_layer = input_layer
        check_mask_options(feature_mask, patch_size, function_ok=True)
        check_int("top_k", top_k, minimum=1)
        check_float("noise_sigma", noise_sigma, minimum=0.0, none_ok=True)
        check_seed(seed)
        layers = layer_names(layers, allow_empty=True)
        check_type("settings", settings, CompareSettings, none_ok=True)
        self.feature_mask, self.patch_size, self.baseline = feature_mask, patch_size, check_baseline(baseline)
        self.target = check_target(target)
        self.top_k, self.noise_sigma, self.layers, self.seed = top_k, noise_sigma, list(layers), seed
        self.unit_dim, self.num_heads = per_layer_layouts(unit_dim, num_heads, self.layers)
        self.settings = settings or CompareSettings()
        if special_tokens is not None:  # as InputEffectAudit(special_tokens=...) takes them; the settings hold them
            given = tuple(special_tokens) if isinstance(special_tokens, (list, tuple)) else special_tokens
            if self.settings.special_tokens and tuple(self.settings.special_tokens) != given:
                raise ValueError(f"Expected `special_tokens` in one place but got {given!r} and settings.special_tokens="
                                 f"{self.settings.special_tokens!r}; give them once")
            self.settings = replace(self.settings, special_tokens=given)  # checked by CompareSettings

    def _mask(self, x: Tensor) -> Tensor:
        return probe_groups("CaptumBaseline", self.feature_mask, self.patch_size, x)

    def _baseline(self, x: Tensor) -> Any:
        """The baseline of token inputs ``x`` with ``settings.special_tokens`` kept (``[N, T]``): they are
        replaced by no method, curve or metric, as the causal effects leave them."""
        return special_token_baseline(x, self.baseline, tuple(self.settings.special_tokens))

    def _special(self, x: Tensor) -> tuple[int, ...]:
        return () if x.is_floating_point() else tuple(self.settings.special_tokens)

    def validate(self, model: nn.Module, probe: Probe) -> None:
        if isinstance(probe.inputs, tuple):
            raise single_input_error("CaptumBaseline", probe.inputs)
        if probe.first.dim() < 2:  # Captum's methods, masks and curves take [N, features...]: refused here, not at the run
            raise ValueError(
                f"CaptumBaseline explains inputs with a feature dimension [N, F, ...] but got the probe's input "
                f"{list(probe.first.shape)} of {probe.first.dtype} (one value per sample, e.g. a denoiser's timesteps); give "
                "it as a column [N, 1], t[:, None] (in `unpack_batch=` or the probe), read by the model as t[:, 0], or explain "
                "it with InputEffectAudit, which takes it as it is")
        check_name_count("feature_names", self.feature_names, int(self._mask(probe.first).max()) + 1, "feature group")
        for layer in self.layers:
            check_site(model, layer)
        if self.input_layer:
            resolve_module(model, self.input_layer)
        if probe.first.is_complex():  # Captum's methods, its perturbations and the metrics' orderings need real values
            raise ValueError(f"CaptumBaseline compares Captum's attributions, which take real inputs, but the probe holds "
                             f"{probe.first.dtype}: explain complex inputs with InputEffectAudit (their exact effects are "
                             "defined), or give the model real inputs, torch.view_as_real(z), that it turns complex inside "
                             "(torch.view_as_complex)")
        if not probe.first.is_floating_point():
            check_token_options(self, probe.first, model, probe)

    def _explainers(self, model: nn.Module, probe: Probe, mask: Tensor, mbs: int | None,
                    notes: list[str] | None = None, levels: dict[str, tuple[float, bool]] | None = None) -> dict[str, Explainer]:
        """``(inputs, target) -> scores [M, G]`` of the causal effects and of each Captum method, for
        inputs whose rows repeat the probe's samples (``M = k N``: Captum's sensitivity repeats each
        sample ``k`` times), so that per-sample forward arguments follow their rows. ``notes``, where given, takes
        what :func:`~lightning_causal.baselines.captum_methods.tunnel_stdevs` says of NoiseTunnel's default level;
        ``levels``, where given, each NoiseTunnel method's noise level and whether it is that default (its label the key)."""
        g, n = int(mask.max()) + 1, len(probe)
        # the default noise level is 15% of the explained inputs' range: the probe's, for every input explained
        # (x + ε of the stability metric too, whose wider range raised it by a quarter on digits in [0, 1]); one level
        # for every NoiseTunnel method without stdevs=, told once (a table of mixed scales: tunnel_stdevs)
        default_level = (tunnel_stdevs(probe.first, None, notes) if probe.first.is_floating_point() and any(
            s.noise_tunnel and s.options.get("stdevs") is None for s in self.specs) else None)

        def rows(z: Tensor) -> Tensor:
            return torch.arange(z.shape[0], device=z.device) // max(1, z.shape[0] // n)

        def options(z: Tensor) -> dict[str, Any]:
            return self.model_options(probe if z.shape[0] == n else probe.subset(rows(z)))

        def groups(z: Tensor) -> Tensor:  # per-sample groups follow their rows too
            return mask if z.shape[0] == n or mask.shape[0] == 1 else mask[rows(z).to(mask.device)]

        def causal(z: Tensor, target: Tensor) -> Tensor:
            return input_effects(model, z, groups(z), self.baseline, target=target, max_batch_size=mbs,
                                 input_layer=self.input_layer, special_tokens=self._special(z), **options(z))

        def captum(spec: MethodSpec) -> Explainer:
            default = spec.noise_tunnel and spec.options.get("stdevs") is None and default_level is not None
            if default:
                spec = replace(spec, options={**spec.options, "stdevs": default_level})
            if levels is not None and spec.noise_tunnel and spec.options.get("stdevs") is not None:
                levels[spec.label] = (float(spec.options["stdevs"]), default)

            def explain(z: Tensor, target: Tensor) -> Tensor:
                m, b = groups(z), self._baseline(z)
                if spec.layer:
                    amap = input_layer_attribute(model, z, self.input_layer, spec, target=target, feature_mask=m,  # type: ignore[arg-type]
                                                 generator=self.seed, baseline=b, max_batch_size=mbs, **options(z))
                else:
                    amap = attribute(model, z, spec, target, feature_mask=m, generator=self.seed, baselines=b, max_batch_size=mbs, **options(z))
                return aggregate_to_groups(amap, m, "mean" if spec.grouped else "sum", num_groups=g)

            return explain

        return {"causal": causal, **{s.label: captum(s) for s in self.specs}}

    def run(self, model: nn.Module, probe: Probe, *, max_batch_size: int | None = None) -> AuditResult:
        with remembered_fit():  # one block: what the model is (its log-probabilities) said once a run, by either side
            return self._compared(model, probe, max_batch_size)

    def _compared(self, model: nn.Module, probe: Probe, max_batch_size: int | None) -> AuditResult:
        self.validate(model, probe)
        x = probe.first
        mask = self._mask(x)
        g = int(mask.max()) + 1
        options = self.model_options(probe)
        if not self.input_layer:  # the causal effects, the ablation methods and the curves set groups to `baseline`
            warn_one_hot_interventions(f"CaptumBaseline {self.name!r}", x, mask, self.baseline, self.feature_names)
        with audit_mode(model), embedding_readers(model, (x,)) as readers, GeneratorWatch() as clean_pass:  # which
            out = Forward(model, num_samples=len(probe), **options)(x)  # float columns are category codes; a model's noise
        codes = code_elements(readers, (x,))[0]  # they take no stability noise (another category, not a neighbour)
        tidx = resolve_target(out, self.target)
        say_once_in_block("log_probabilities", lambda: warn_saturated_log_probs(  # for both sides: neither says it again
            self.output, out, tidx, f"CaptumBaseline {self.name!r} (its causal effects and Captum's methods)"))
        if self.target is None:
            warn_predicted_class_of_regression(f"CaptumBaseline {self.name!r}", probe.labels, out, model=model, output=self.output, probe=probe)
        if self.settings.score == "auto" and out.dim() == 2 and out.shape[1] > 1:
            warn_softmax_of_regression(f"CaptumBaseline {self.name!r} (its deletion and insertion curves)", probe.labels, "`settings=CompareSettings(score='raw')`",
                                       model=model, outputs=out, output=self.output, probe=probe)
        tunnel_notes: list[str] = []  # NoiseTunnel's default level on a table of mixed scales: warned, and on the card
        levels: dict[str, tuple[float, bool]] = {}  # each NoiseTunnel method's noise level, and whether it is the default
        explainers = self._explainers(model, probe, mask, max_batch_size, tunnel_notes, levels)
        if codes is not None:  # NoiseTunnel's noise moves category codes too: warned, and a code past the last named
            explainers = noisy_codes_named(self, explainers, codes, x, tunnel_notes)
        real = real_groups(x, mask, probe.additional_forward_args, model, self._special(x))  # None without padding
        result = AuditResult(self.name)
        scores, seconds = {}, {}
        for label, explain in explainers.items():
            t0 = time.perf_counter()
            scores[label] = explain(x, tidx)
            seconds[label] = time.perf_counter() - t0
            result.maps[label] = broadcast_groups(scores[label], mask, x.shape)
            result.vectors[f"mean_abs/{label}"] = real_mean(scores[label].abs(), real)
        def plain(spec: MethodSpec) -> Tensor:  # a NoiseTunnel method's groups without the tunnel, against its zeros
            bare = MethodSpec(spec.name, False, {k: v for k, v in spec.options.items() if k not in TUNNEL_DEFAULTS})
            with warnings.catch_warnings():  # a method the user did not ask for: what it says, the tunnel's run has said
                warnings.simplefilter("ignore")
                amap = attribute(model, x, bare, tidx, feature_mask=mask, generator=self.seed, baselines=self._baseline(x),
                                 max_batch_size=max_batch_size, **options)
            return aggregate_to_groups(amap, mask, "sum", num_groups=g)

        tunnel = tunnel_zeros(self, scores, levels, plain)  # a NoiseTunnel method of (nearly) 0 everywhere: its level named
        zero = warn_without_gradient(self, scores, tunnel)
        lost = nan_score_rows(result, scores, real)  # NaN scores under some explanation: those samples left out of every curve
        rows = {label: faithfulness(self, model, probe, mask, scores[label], tidx, max_batch_size, result, label, real, lost,
                                    clean=(out, clean_pass.moved))  # one clean pass for every curve
                for label in scores}
        tokens = not x.is_floating_point()
        # the noise of floating inputs: noise_fraction standard deviations of each input element over the probe's
        # samples (input_noise_sd, the rule of every stability measure), or noise_sigma in the input's units
        # a probe of which no element varies (one sample) has no spread to scale by: a noise of 0 would read a
        # stability of 1 for every method, so there is none (and no sensitivity_max), with a note
        # (each element's sd over the samples, element_sd, computed once: whether any varies, and the noise's scale)
        sd = None if tokens or self.noise_sigma is not None else element_sd(x)
        sigma = self.settings.noise_fraction if tokens else (  # input_noise_sd(x, noise_fraction), or noise_sigma
            self.noise_sigma if sd is None else sd * self.settings.noise_fraction)
        kept = None if tokens or codes is None else codes_kept_note("stability", (x,), (codes,))
        if kept:  # category codes take no noise, noise_sigma's no more than the default's: said (after write_comparison)
            tunnel_notes.append(kept)
            sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).expand_as(x[:1]).masked_fill(codes.to(x.device), 0.0)
        # varies(x) on the default path; noise_sigma, in the input's units, needs no spread over the samples (0 is the
        # user's own choice: measured as given, category codes or not)
        spread = (not isinstance(sigma, Tensor) or self.noise_sigma == 0
                  or bool((sigma > 0).any()))  # element_sd is 0 for one sample
        sigma = sigma if spread else None
        for label, explain in explainers.items():
            if spread:
                rows[label]["stability"] = stability(self, explain, probe, tidx, scores[label], sigma, real, model)
            if self.settings.reference_metrics:
                rows[label].update(reference_metrics(self, model, probe, mask, scores[label], tidx, explain, sigma, max_batch_size))
        k = overlap_k(self.top_k, g)
        for spec in self.specs:
            rows[spec.label] = {**agreement(self, scores["causal"], scores[spec.label], k, real), **rows[spec.label]}
        write_comparison(self, result, rows, seconds, zero, tunnel)
        if tunnel_notes:  # after write_comparison, which sets the notes
            result.meta.setdefault("notes", []).extend(tunnel_notes)
        if not spread:
            note_no_spread(self, result, x, codes_only=bool(kept))
        warn_surrogate_gradient(self, model, probe, tidx, result)
        for layer in self.layers:
            self._layer(model, probe, layer, tidx, max_batch_size, result)
        softmax = self.settings.score == "softmax" or self.settings.score == "auto" and out.dim() == 2 and out.shape[1] > 1
        result.meta["curve_score"] = curve_score(softmax, out)  # what is explained: a probability where it is one
        note_flat_curves(self, result, list(scores))
        note_nan_scores(self, result, int(x.shape[0]))
        result.meta.update(groups=g, samples=int(x.shape[0]), method_seconds=seconds, top_k=k,
                           sigma=sigma if not isinstance(sigma, Tensor) else self.noise_sigma if self.noise_sigma is not None else
                           f"{self.settings.noise_fraction} standard deviations of each input element over the probe's samples",
                           methods=[s.label for s in self.specs])
        said = baseline_text(self.baseline, x.dtype in INDEX_DTYPES, self.input_layer)
        if said is not None:  # the causal map's δ_g = f(x) − f(x | do(x_g := b)) is against b; the methods' maps are not
            result.meta.update(baseline=said, baseline_maps=["causal"])
        codes = code_columns(model, probe) if x.dtype in INDEX_DTYPES else {}
        if codes:  # category codes, a column per embedding: drawn as a table's bars, not a token strip
            result.meta["code_columns"] = codes
        result.meta.update(names_meta(self.feature_names, self.class_names, tidx, mask, inputs=x, vocabulary=self.vocabulary,
                                      outputs=out, labels=probe.labels, model=task_model(model, self.output)))
        return result

    def _layer(
        self, model: nn.Module, probe: Probe, layer: str, tidx: Tensor, mbs: int | None, result: AuditResult
    ) -> None:
        method, options = self.settings.layer_method, self.model_options(probe)
        unit_dim, num_heads = self.unit_dim[layer], self.num_heads[layer]
        causal, info = unit_effects(model, probe.inputs, layer, target=tidx, max_batch_size=mbs, unit_dim=unit_dim,
                                    num_heads=num_heads, return_info=True, **options)
        if info.calls > 1:  # a shared module: Captum's layer methods read its last call, the causal effects set every call
            result.meta[f"calls/{layer}"] = info.calls
            result.meta.setdefault("notes", []).append(
                f"{layer} runs several times per forward pass ({calls_counted(info.calls)}): {method} reads its last "
                "call only (Captum's layer "
                "methods hook one output), while the causal effects set each unit at every call, so their compare/ "
                "metrics compare different things (an nn.Identity per call names one: docs/your_model.md, 'Layers in "
                "functional code')")
        other = layer_attribute(model, probe.first, layer, method, target=tidx, baselines=self._baseline(probe.first), max_batch_size=mbs,
                                unit_dim=unit_dim, num_heads=num_heads, **options)
        def moved() -> bool:  # whether the layer's activations change with the explained input (set to the baseline)
            seen = [layer_attribute(model, z, layer, "LayerActivation", unit_dim=unit_dim, num_heads=num_heads, **options)
                    for z in (probe.first, torch.as_tensor(self._baseline(probe.first)).to(probe.first).expand_as(probe.first))]
            return not torch.equal(*seen)

        warn_layer_unreached(self, result, layer, method, causal, other, moved)
        for metric, value in agreement(self, causal, other, overlap_k(self.top_k, causal.shape[1])).items():
            result.scalars[f"compare/{self._tagged(f'{method}-{layer}')}/{metric}"] = value

    def _tagged(self, label: str) -> str:
        """The method part of a ``compare/`` key: the label, led by the audit's name when
        it is not the default (those keys are logged outside ``causal/<audit>/``)."""
        return label if self.name == _DEFAULT_NAME else f"{self.name}:{label}"
