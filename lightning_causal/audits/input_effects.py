"""InputEffectAudit: per-sample input interventions, effect maps, ACE summary, top groups."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from lightning_causal.audits.base import Audit, AuditResult, Probe
from lightning_causal.audits.category_codes import code_reading
from lightning_causal.audits.group_regions import group_key, group_region, signal_layout
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
)
from lightning_causal.audits.top_share import add_top_share, note_non_finite_samples
from lightning_causal.causal.effects.input_effects import average_causal_effect, input_effects
from lightning_causal.causal.engine.ablation import (
    ADDITIVE_PAD,
    _rows_alike,
    check_baselines,
    padding_arguments,
    padding_positions,
    unnamed_lengths,
    unnamed_observation_mask,
    unnamed_padding,
    unnamed_padding_way,
    unread_attention_mask,
)
from lightning_causal.causal.engine.checks import check_int
from lightning_causal.causal.engine.forward import Forward, OutputSpec
from lightning_causal.causal.engine.groups import broadcast_groups, group_counts, group_mask
from lightning_causal.causal.engine.input_noise import code_elements
from lightning_causal.causal.engine.interventions import resolve_module
from lightning_causal.causal.engine.probe_warnings import (
    ConstantGroupsWarning,
    ProbeContentsWarning,
)
from lightning_causal.causal.engine.ranking import largest_k
from lightning_causal.causal.engine.state import audit_mode, resolve_target
from lightning_causal.causal.engine.token_ids import (
    INDEX_DTYPES,
    check_special_tokens,
    embedding_readers,
)
from lightning_causal.causal.engine.user_frame import outside_package
from lightning_causal.causal.scm.attribute_flip import one_hot_blocks

__all__ = ["MANY_GROUPS", "InputEffectAudit", "probe_groups", "real_groups", "real_mean"]

# one group per element beyond this many elements per sample is warned of: a second of 16 kHz audio
# [N, 1, 16000] took 200 s on a CPU for the callback's 2-sample dry run alone (hours per audit), with no word
# 3x32x32 images (3,072 groups) cost a LayerMapAudit about 60 s of CPU per audit at 64 probe rows (layermap_speed,
# benchmarks/RESULTS.md): warned of beyond 1,024 (as the docstrings and docs/recipes.md say: a 1x28x28 image, 784, a
# 1x32x32 one or a sequence [N, 256, 4], 1,024, are not)
MANY_GROUPS = 1024


def warn_many_default_groups(audit: str, inputs: Tensor) -> None:
    """Warn that the default groups (one per element: no ``feature_mask``, no ``patch_size``) of a floating
    point input of more than :data:`MANY_GROUPS` elements per sample cost a pass row per element and
    sample, naming a grouping for its shape: windows of a signal ``[N, C, T]`` or ``[N, T, F]`` (which axis is
    time: :func:`~lightning_causal.audits.group_regions.signal_layout`), patches of an image ``[N, C, H, W]``
    or ``[N, H, W]``, cubes of a volume or frames of a video ``[N, C, D, H, W]``, a mask of your own otherwise.
    Token ids (integer) are left alone: a token is the group a text model is explained by.

    Args:
        audit: the audit's class name, for the message.
        inputs: the probe's inputs ``[N, ...]``.
    """
    if not inputs.is_floating_point() or inputs.dim() < 2:
        return
    shape, groups = list(inputs.shape), inputs[0].numel()
    if groups <= MANY_GROUPS:
        return
    layout = signal_layout(shape[1:]) if inputs.dim() == 3 else None
    if layout is not None:  # [N, C, T] channels first or [N, T, F] features last (an LSTM's batch_first window)
        steps = shape[-1] if layout == "first" else shape[1]
        width = -(-steps // 64)
        view, along = ((1, 1, steps), "channels") if layout == "first" else ((1, steps, 1), "features")
        fix = (f"windows of {width} steps, `feature_mask=(torch.arange({steps}) // {width}).reshape{view}` "
               f"({-(-steps // width)} groups, {along} together)")
    elif inputs.dim() in (3, 4):
        side = max(2, math.ceil(math.sqrt(shape[-2] * shape[-1] / 256)))
        fix = f"square patches, `patch_size={side}` (about {-(-shape[-2] // side) * -(-shape[-1] // side)} groups)"
    elif inputs.dim() == 5:
        side = max(2, math.ceil((shape[-3] * shape[-2] * shape[-1] / 256) ** (1 / 3)))
        cubes = -(-shape[-3] // side) * -(-shape[-2] // side) * -(-shape[-1] // side)
        fix = (f"cubes of a volume, `patch_size={side}` (about {cubes} groups), or one group per frame of a video, "
               f"`feature_mask=torch.arange({shape[2]}).reshape(1, 1, {shape[2]}, 1, 1)`")
    else:
        fix = "a `feature_mask` of your own"
    warnings.warn(
        f"{audit}: without `feature_mask` or `patch_size` every element of the inputs {shape} is a group of its own, "
        f"{groups} groups, and each is intervened on in every probe sample ({groups} model rows per sample, "
        f"{groups * 256:,} for the callback's default 256 samples): an audit takes minutes to hours on a CPU. "
        f"Group the elements: {fix}",
        UserWarning, stacklevel=outside_package())


def probe_groups(
    audit: str, feature_mask: Tensor | Callable[[Tensor], Tensor] | None, patch_size: int | None, inputs: Tensor
) -> Tensor:
    """The feature groups of a probe's inputs ``[N, ...]``, ``[1 or N, ...]`` on their device, as
    :class:`InputEffectAudit` and :class:`~lightning_causal.audits.captum_baseline.CaptumBaseline`
    resolve their ``feature_mask=``/``patch_size=``: a mask shared by every sample (``[1, ...]`` or
    one sample's shape), a function of the inputs that returns one mask ``[1, ...]`` or one per
    sample ``[N, ...]`` (word pieces grouped into words: group ``g`` is each sentence's ``g``-th
    word), square patches, or one group per element (:func:`group_mask`).

    A tensor of per-sample masks ``[N, ...]`` is refused: the callback draws the probe, so groups
    fixed at construction could not follow its samples (they would group other sentences' pieces).
    One group per element of a floating point input of more than :data:`MANY_GROUPS` elements per sample
    (a second of audio, a large image) is warned of, naming a grouping (:func:`warn_many_default_groups`).

    Args:
        audit: the audit's class name, for the messages.
        feature_mask: a mask shared by every sample, a function ``inputs -> mask``, or ``None``, as
            above.
        patch_size: square patches of this side for images, cubes for volumes (:func:`group_mask`); ``None``: none.
        inputs: the probe's inputs ``[N, ...]``.

    Examples:
        >>> ids = torch.tensor([[1, 7, 41, 2], [1, 41, 8, 2]])
        >>> probe_groups("InputEffectAudit", lambda x: (x < 40).long().cumsum(1) - 1, None, ids)
        tensor([[0, 1, 1, 2],
                [0, 0, 1, 2]])
    """
    fm = feature_mask
    if fm is None and patch_size is None:
        warn_many_default_groups(audit, inputs)
    if isinstance(fm, Tensor) and fm.dim() == inputs.dim() and fm.shape[0] > 1:
        raise ValueError(
            f"Expected argument `feature_mask` of {audit} to be one mask shared by every probe sample "
            f"[1, ...] but got {list(fm.shape)}; for per-sample groups (e.g. word pieces grouped into words, "
            "[N, T]) pass a function of the probe's inputs that returns them"
        )
    if callable(fm) and not isinstance(fm, Tensor):
        fm = fm(inputs)
        if not isinstance(fm, Tensor) or fm.is_floating_point() or fm.is_complex() or fm.dtype == torch.bool:
            raise TypeError(f"Expected argument `feature_mask` (a function) to return an integer tensor of group ids "
                            f"but it returned {fm!r:.80}")
        if fm.dim() == inputs.dim() and fm.shape[0] not in (1, inputs.shape[0]):
            raise ValueError(f"Expected argument `feature_mask` (a function) to return groups [1 or {inputs.shape[0]}, ...] "
                             f"for the probe's {inputs.shape[0]} samples but it returned shape {list(fm.shape)}")
        if fm.numel() and int(fm.min()) < 0:
            raise ValueError(f"Expected argument `feature_mask` (a function) to return group ids >= 0 but got {int(fm.min())}")
    return group_mask(inputs, fm, patch_size)


def real_groups(
    inputs: Tensor, feature_mask: Tensor, additional_forward_args: object, model: nn.Module | None = None,
    special_tokens: Sequence[int] = (),
) -> Tensor | None:
    """Which feature groups of each sample hold at least one real (non-padding) position: ``[N, G]``
    booleans, ``G = max id + 1``; ``None`` when every group is real in every sample (no
    ``attention_mask``, or one without zeros, and a shared mask or per-sample groups ``[N, ...]``
    that all hold an element in every sample). With per-sample groups, a group a sample does not
    have (the fifth word of a four-word sentence) is not real there either, and an id no element
    carries (superpixels numbered from 1, as ``skimage.segmentation.slic`` numbers them, or with
    gaps) is real nowhere: it would count as a group of effect 0 in every mean and ranking. A group lying entirely in padding has effect exactly 0 and is left out of the
    audits' summaries (see :func:`~lightning_causal.causal.engine.ablation.padding_positions`; with
    ``model``, positional forward arguments are read by the names of its ``forward``'s parameters).
    Positions that hold one of ``special_tokens`` (token ids no intervention replaces) are not real
    either: a group of special tokens only has effect exactly 0 too.

    .. math:: \\mathrm{real}_{n,g} = \\exists\\, i ∈ g : \\mathrm{attention\\_mask}_{n,i} = 1

    Args:
        inputs: the probe's inputs ``[N, ...]`` (token ids for ``special_tokens``).
        feature_mask: their groups ``[1 or N, ...]``.
        additional_forward_args: the probe's forward arguments, where the padding mask is read.
        model: the model, as above; ``None``: keyword forward arguments only.
        special_tokens: token ids, as above.

    Examples:
        >>> ids = torch.zeros(2, 4, dtype=torch.long)
        >>> real_groups(ids, torch.tensor([[0, 1, 1, 2]]), {"attention_mask": torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])})
        tensor([[ True,  True, False],
                [ True,  True,  True]])
    """
    return _real_groups(inputs, feature_mask, padding_positions(inputs, additional_forward_args, model=model), special_tokens)


def _real_groups(inputs: Tensor, feature_mask: Tensor, padding: Tensor | None, special_tokens: Sequence[int] = ()) -> Tensor | None:
    """:func:`real_groups` of the probe's padding already read (``padding``: its ``padding_positions``, or ``None``)."""
    if special_tokens and not inputs.is_floating_point():
        special = torch.isin(inputs, torch.tensor(tuple(special_tokens), dtype=inputs.dtype, device=inputs.device))
        padding = special if padding is None else padding | special
    unpadded = padding is None or not bool(padding.any())
    counts = group_counts(inputs, feature_mask, keep=None if unpadded else ~padding)
    if unpadded and bool((counts > 0).all()):
        return None
    return counts > 0


def real_mean(values: Tensor, real: Tensor | None) -> Tensor:
    """Each group's mean over the samples where it is real, ``[G]`` from ``[N, G]``:
    ``Σ_n real_{n,g} v_{n,g} / max(1, Σ_n real_{n,g})`` (0 where it is real nowhere), the plain mean
    over samples when ``real`` is ``None`` (:func:`real_groups`). The vectors of
    :class:`InputEffectAudit` and :class:`~lightning_causal.audits.captum_baseline.CaptumBaseline`
    whose drift the callback follows across epochs.

    Args:
        values: per-sample group values ``[N, G]``.
        real: ``[N, G]`` booleans from :func:`real_groups`, or ``None``.

    Examples:
        >>> real_mean(torch.tensor([[1.0, 4.0], [3.0, 0.0]]), torch.tensor([[True, True], [True, False]]))
        tensor([2., 4.])
    """
    if real is None:
        return values.mean(0)
    return (values * real).sum(0) / real.sum(0).clamp_min(1)


def baseline_text(baseline: Any, integer_inputs: bool = False, input_layer: str | None = None) -> str | None:
    """What each group is set to, for the figures' words ("red: raises the explained class's score against the group
    set to 0"): a number (``"0"``, ``"0.5"``), ``"id 103"`` for an integer baseline of inputs of ids (int64 or int32:
    a token or a category code), ``"the embedding of id 103"`` for it at an ``input_layer``; ``None`` where it is no
    single value (a tensor of different values per element, one per input of a tuple); a tensor whose elements are all
    one value (``torch.zeros(D)``) is that value. Other integer inputs (uint8 pixels,
    int16 audio samples) hold values, no ids: their baseline is a number (``"0"``).

    Args:
        baseline: the audit's baseline (a number, a tensor or a tuple of them).
        integer_inputs: whether the explained inputs hold ids (int64 or int32, ``INDEX_DTYPES``).
        input_layer: the module whose output is intervened on, or ``None`` (the inputs).

    Examples:
        >>> baseline_text(0.0), baseline_text(torch.tensor(0.5)), baseline_text(103, True), baseline_text(torch.zeros(4))
        ('0', '0.5', 'id 103', '0')
        >>> baseline_text(torch.tensor([0.0, 1.0])) is None  # no single value: not said
        True
        >>> baseline_text(103, True, "bert.embeddings.word_embeddings"), baseline_text(0.0, True, "emb")
        ('the embedding of id 103', '0 at emb')
    """
    values = baseline if isinstance(baseline, tuple) else (baseline,)
    if len(values) != 1:
        return None
    b = values[0]
    if isinstance(b, Tensor):  # torch.zeros(D), [N, D] of one value: every group set to that one number, said as it
        flat = b.detach().reshape(-1)
        if flat.numel() == 0 or not bool((flat == flat[0]).all()):
            return None
        b = flat[0].item()
    if integer_inputs and isinstance(b, int) and not isinstance(b, bool):
        return f"the embedding of id {b}" if input_layer is not None else f"id {b}"
    text = str(b) if isinstance(b, bool) else f"{b:g}"
    return f"{text} at {input_layer}" if input_layer is not None else text


def warn_one_hot_interventions(who: str, x: Tensor, mask: Tensor, baseline: Any, feature_names: Sequence[str] | None) -> list[list[int]]:
    """Warn when an intervention of ``baseline`` on the groups of ``mask`` turns a one-hot block of a
    tabular probe ``[N, D]`` into a row no encoder produces: a block split over several groups (one
    column set to the baseline alone), or a block set to a baseline that is no one-hot vector (``0``:
    no category). Probes of 16 rows or more only: fewer (the callback's 2-row dry run) say little
    about the encoding. ``baseline`` is read as the engine reads it (``check_baselines``: a number,
    ``[F]``, ``[1, F]``, one per sample ``[N, F]``, or a tuple of one), and each intervened row's
    block is checked. ``who`` opens the message (``"InputEffectAudit 'input_effect'"``); the
    audits that set groups to a baseline (``InputEffectAudit``, and ``CaptumBaseline`` for its
    causal effects and curves) call it. Returns the blocks (``[]`` where nothing was checked).

    Args:
        who: the message's opening, as above.
        x: the probe's inputs (tabular ``[N, D]`` only are checked).
        mask: their groups ``[1 or N, D]``.
        baseline: the audit's baseline, as above.
        feature_names: the column names for the message; ``None``: indices.
    """
    if x.dim() != 2 or not x.is_floating_point() or x.shape[0] < 16:
        return []
    x = x.detach()
    ids = mask.expand(x.shape)
    try:  # the baseline as the engine reads it: a tuple of one, [F], [1, F], [N, F] (one per sample)
        base = check_baselines((x,), baseline)[0].expand(x.shape)
    except (RuntimeError, TypeError, ValueError):  # one the engine refuses: input_effects names it
        return []
    blocks = one_hot_blocks(x)
    for block in blocks:
        names = [feature_names[c] for c in block] if feature_names is not None and len(feature_names) == x.shape[1] else block
        if bool((ids[:, block] != ids[:, block[:1]]).any()):
            problem = "sets each of its columns to the baseline on its own (a group per column)"
        else:
            b = base[:, block]
            off = ~(((b == 0) | (b == 1)).all(1) & (b.sum(1) == 1))
            if not bool(off.any()):
                continue
            problem = f"sets it to the baseline {b[off][0].tolist()}, no one-hot row"
        warnings.warn(
            f"{who}: columns {names} are a one-hot block (0/1, one 1 per probe row) and the intervention {problem}: the "
            "intervened rows have no category or two, which no encoder produces, so their effects are the model's "
            "response off its data. Give the block one group id in `feature_mask` and a tensor `baseline` holding the "
            f"one-hot vector of a reference category on its columns, e.g. `baseline = torch.zeros({x.shape[1]}); "
            f"baseline[{block[0]}] = 1.0` (reference {names[0]!r}, 0 on the other columns)", UserWarning, stacklevel=outside_package())
    return blocks


class InputEffectAudit(Audit):
    """Interventions on input feature groups: δ_g(x) = f_t(x) − f_t(x | do(x_g := b)).

    Groups come from ``feature_mask`` (Captum's convention), ``patch_size`` (square image
    patches, cubes of a volume), or default to one group per input element (per column for tabular data, per
    position for token ids; a floating point input of more than :data:`MANY_GROUPS` elements per sample,
    a second of audio or a large image, gets a warning naming a grouping: each group costs a model
    row per probe sample). Reports per-sample effect maps, the mean |δ| per group, the average
    causal effect curve range per group (Chattopadhyay et al. 2019, over ``ace_values`` quantiles of
    the probe; floating point inputs only) and the top groups. For token ids it also reports the
    top tokens (table ``top_tokens``: each token id's mean |δ| over its occurrences in the probe,
    padding excluded), which are what a text model relies on whatever their positions.

    Scalars: ``mean_abs_effect`` (mean |δ| over samples and groups), ``max_abs_effect`` (the
    strongest group's mean |δ| over the samples, ``max_g E_n|δ_{n,g}|``: not the largest single
    |δ|, which the per-sample maps show), ``top{k}_share`` (k: ``top_k``; the ``top_k`` groups' share of
    ``Σ_g E_n|δ_{n,g}|``; at most all groups but one are summed, whose share would always be 1: with 4 groups,
    ``top5_share`` sums 3, said in ``meta["top_shares"]`` and the text card; the tag keeps ``top_k``, not the number
    summed: :func:`~lightning_causal.audits.top_share.add_top_share`) and ``mean_ace_range`` (the mean over groups of the ACE curve's range).

    With an ``attention_mask`` or ``lengths`` (packed sequences) in the probe's forward arguments (a
    keyword, or positional where the model's ``forward`` names its parameter so;
    :func:`~lightning_causal.causal.engine.ablation.padding_positions`), groups lying entirely in padding
    (:func:`real_groups`; effect exactly 0) are left out: the vectors are means over the samples
    where the group is real, ``E_n[|δ_g| | real_{n,g}]`` (0 where it never is), the scalar
    ``mean_abs_effect`` is ``Σ_{n,g} real_{n,g} |δ_{n,g}| / Σ_{n,g} real_{n,g}``, and the top
    groups (ties: lower id first) are drawn from the groups real in some sample; the ACE curves
    average the samples where the group is real and ``mean_ace_range`` the groups real in some
    sample, so the summaries do not change with the padding length. Ids that no element carries
    (superpixels numbered from 1, or with gaps) are left out the same way: renumbering the groups
    changes no summary.

    Args:
        feature_mask: integer group ids broadcastable to one input ``[1, ...]``, or a function of
            the probe's inputs ``[N, ...]`` that returns them, ``[1, ...]`` or one mask per sample
            ``[N, ...]`` (per-sample groups: e.g. word pieces grouped into words, where group ``g``
            is each sentence's ``g``-th word; the vectors and tables then summarise the ``g``-th
            word over the sentences that have one).
        patch_size: square patches for image inputs ``[N, C, H, W]``, cubes for volumes ``[N, C, D, H, W]``.
        baseline: the intervention value ``b`` (scalar or tensor broadcastable to the input; an
            integer token id for token inputs). A one-hot block of tabular columns needs one group
            in ``feature_mask`` and a tensor baseline holding a reference category's one-hot vector
            there; a block split over groups or set to a non-one-hot baseline (``0``: no category)
            gives a ``UserWarning`` naming the block (probes of 16 rows or more).
        target: class to explain; ``None`` = the predicted class of each probe sample.
        top_k: number of top groups in the table (``tables["top_groups"]``: ``group``, ``feature``
            where named, ``mean_abs_effect``, ``mean_effect``, ``ace_range``; with one mask for every
            sample, where the group lies too, the half-open ranges ``[start, stop)`` of its bounding box
            on the input's axes (:func:`~lightning_causal.audits.group_regions.group_region`): ``rows``
            and ``cols`` of an image ``[N, C, H, W]`` (``x[:, :, r0:r1, c0:c1]``) or ``[N, H, W]``,
            ``steps`` of a 1-D signal ``[N, C, T]`` or ``[N, T, F]``, ``depth``, ``rows`` and ``cols``
            of a volume or video ``[N, C, D, H, W]``, and ``channels`` (``features``) where it holds
            some of them only).
        ace_values: number of quantile values of the ACE curve (``None`` skips ACE; integer inputs,
            token ids, skip it too: a quantile of token ids is no token, and no ``ace_range`` or
            ``mean_ace_range`` is logged for them). The curve sets
            every element of a group to the same value ``α`` (quantiles of the group's pooled
            elements): for a group of one-hot columns (a categorical feature) that is all of its
            categories off or all on at once, not a valid category, so its ``ace_range`` is no
            effect of the feature (a ``UserWarning`` names such blocks of a tabular probe); read
            ``mean_abs_effect`` (with a one-hot ``baseline``) there.
        ace_samples: probe samples over which the interventional expectations of the ACE are
            averaged (the first ones; ``None`` = all). ACE costs ``ace_values`` times
            ``ace_samples`` forward rows per group.
        feature_names: one name per feature group (per column of tabular data by default), used
            in the table (column ``feature``), the report and the figures.
        class_names: one name per class of the model's output, used to say which class each
            explanation explains.
        vocabulary: for token inputs, the word of each token id (``vocabulary[id]``), shown in
            the ``top_tokens`` table (column ``word``) and on the token strips.
        input_layer: intervene on this module's output instead of the input (e.g. the word
            embeddings; see :func:`~lightning_causal.causal.effects.input_effects.input_effects`).
        special_tokens: token ids no intervention replaces (e.g. ``(eos_id,)`` for BART or T5
            classifiers, which must read their ``</s>``; ``[CLS]``/``[SEP]``): they keep their
            tokens, have effect 0 and are left out of the summaries, as padded positions are.
        output: which tensor of the model's return value is explained (see :class:`Audit`).
        name: tag of the audit (default ``"input_effect"``).

    Examples:
        >>> import torch
        >>> from lightning_causal.models import MLP
        >>> audit = InputEffectAudit(top_k=2, feature_names=["age", "income", "hours", "tenure"])
        >>> result = audit.run(MLP(4), Probe(torch.randn(8, 4)))
        >>> result.vectors["mean_abs_effect"].shape, len(result.tables["top_groups"])
        (torch.Size([4]), 2)
        >>> result.tables["top_groups"][0]["feature"] in ("age", "income", "hours", "tenure")
        True
    """

    def __init__(
        self,
        feature_mask: Tensor | Callable[[Tensor], Tensor] | None = None,
        patch_size: int | None = None,
        baseline: float | int | Tensor = 0.0,
        *,
        target: int | None = None,
        top_k: int = 5,
        ace_values: int | None = 4,
        ace_samples: int | None = 64,
        feature_names: Sequence[str] | None = None,
        class_names: Sequence[str] | None = None,
        vocabulary: Sequence[str] | None = None,
        input_layer: str | None = None,
        special_tokens: Sequence[int] = (),
        output: OutputSpec = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name, output=output)
        check_mask_options(feature_mask, patch_size, function_ok=True)
        self.special_tokens = check_special_tokens(special_tokens)
        self.feature_names, self.class_names = check_names("feature_names", feature_names), check_names("class_names", class_names)
        self.vocabulary = check_names("vocabulary", vocabulary)
        self.feature_mask, self.patch_size, self.baseline = feature_mask, patch_size, check_baseline(baseline)
        self.target = check_target(target)
        self.top_k = check_int("top_k", top_k, minimum=1)
        self.ace_values = check_int("ace_values", ace_values, minimum=2, none_ok=True)
        self.ace_samples = check_int("ace_samples", ace_samples, minimum=1, none_ok=True)
        if input_layer is not None and (not isinstance(input_layer, str) or not input_layer):
            raise ValueError(f"Expected argument `input_layer` to be None or a module name but got {input_layer!r}")
        self.input_layer = input_layer

    def _mask(self, probe: Probe) -> Tensor:
        return probe_groups("InputEffectAudit", self.feature_mask, self.patch_size, probe.first)

    def validate(self, model: nn.Module, probe: Probe) -> None:
        if isinstance(probe.inputs, tuple):
            raise single_input_error("InputEffectAudit", probe.inputs)
        check_name_count("feature_names", self.feature_names, int(self._mask(probe).max()) + 1, "feature group")
        if self.input_layer is not None:
            resolve_module(model, self.input_layer)

    def run(self, model: nn.Module, probe: Probe, *, max_batch_size: int | None = None) -> AuditResult:
        self.validate(model, probe)
        x, mask, options = probe.first, self._mask(probe), self.model_options(probe)
        if self.input_layer is None:
            blocks = warn_one_hot_interventions(f"InputEffectAudit {self.name!r}", x, mask, self.baseline, self.feature_names)
            if blocks and self.ace_values is not None:  # the ACE curve sets a whole group to one value α
                warnings.warn(
                    f"InputEffectAudit {self.name!r}: the ACE curve sets every element of a group to one value, so the one-hot "
                    f"block(s) {blocks} are all 0 or all 1 at once (no category, or all) at its points and their ace_range is "
                    "no effect of the feature; pass ace_values=None, and read mean_abs_effect with a one-hot baseline",
                    UserWarning, stacklevel=outside_package())
        with audit_mode(model), embedding_readers(model, (x,)) as readers:  # which float columns are category codes
            out = Forward(model, num_samples=len(probe), **options)(x)
        codes = code_elements(readers, (x,))[0]
        targets = resolve_target(out, self.target)
        if self.target is None:
            warn_predicted_class_of_regression(f"InputEffectAudit {self.name!r}", probe.labels, out, model=model, output=self.output, probe=probe)
        effects = input_effects(model, x, mask, self.baseline, target=targets, max_batch_size=max_batch_size,
                                input_layer=self.input_layer, special_tokens=self.special_tokens, **options)
        padding = padding_positions(x, probe.additional_forward_args, model=model)  # read once, for each use below
        real = _real_groups(x, mask, padding, self.special_tokens)
        mean_abs, mean = real_mean(effects.abs(), real), real_mean(effects, real)  # padding groups left out
        unread = unnamed_padding(x, probe.additional_forward_args) if real is None and padding is None else None
        if unread is not None:
            where, value, _ = unread
            warnings.warn(
                f"InputEffectAudit {self.name!r}: {where} is {value} where the inputs are all zero, as a padding mask (padded "
                "graphs' node mask, padded steps) is, but only `attention_mask` (0 = padding) or `lengths` are read as "
                "padding: the means and rankings count those positions as groups of effect 0 (a node slot that few "
                f"samples hold ranks low); {unnamed_padding_way(value)}",
                ProbeContentsWarning, stacklevel=outside_package())
        counts = unnamed_lengths(x, probe.additional_forward_args, model=model) if real is None and padding is None else None
        if counts is not None:
            warnings.warn(
                f"InputEffectAudit {self.name!r}: {counts} holds each sample's count of the inputs' steps (the steps after it "
                "one pad value), but a bare `length`, `lens` or `len` is not read as the inputs' lengths (it may count "
                "anything): the padded steps are set by the interventions, given effects of their own (0 where the model "
                "packs them away) and counted in the means and rankings; name the parameter `lengths`, or `<input>_lengths` "
                "after the explained input's parameter (forward(self, values, values_lengths)), or pass it as that keyword",
                ProbeContentsWarning, stacklevel=outside_package())
        bias = unread_attention_mask(x, probe.additional_forward_args, model=model) if padding is None else None
        named = padding_arguments(model, probe.additional_forward_args) if bias is not None else None
        unread = named.get("attention_mask") if isinstance(named, Mapping) else None
        if bias is not None and isinstance(unread, torch.Tensor) and unread.dtype == torch.bool:
            if _rows_alike(unread):  # rows alike: key_padding warned of it (ROWS_ALIKE_SENSE)
                bias = None
        if bias is not None and isinstance(unread, torch.Tensor) and unread.dtype == torch.bool:
            warnings.warn(
                f"InputEffectAudit {self.name!r}: the forward argument `attention_mask` of shape {bias} is boolean, but its "
                "sense cannot be told (True = attend, Hugging Face's, or True = left out, torch's: under either reading a "
                "real query leaves its own key out, or its rows are alike and the inputs' padding holds no one pad value), "
                "so none of its keys is read as padding: padded positions are set by the interventions, given effects of "
                "their own and counted in the means and rankings; pass the padding as a keep mask `attention_mask` [N, T] "
                "(True at the real positions, False at the padding) and build the square mask inside forward",
                ProbeContentsWarning, stacklevel=outside_package())
        elif bias is not None:
            warnings.warn(
                f"InputEffectAudit {self.name!r}: the forward argument `attention_mask` of shape {bias} holds other values "
                f"than 0 beside -inf or numbers at most {ADDITIVE_PAD:g} (a bias added to the scores), so which keys are "
                "padding cannot be told and none is read: padded positions are set by the interventions, given effects of "
                "their own and counted in the means and rankings; pass the padding as a keep mask `attention_mask` [N, T] "
                "(1 at the real positions, 0 at the padding) and add the bias inside forward",
                ProbeContentsWarning, stacklevel=outside_package())
        observed = (unnamed_observation_mask(x, probe.additional_forward_args, model=model)
                    if padding is None or padding.shape != x.shape else None)  # an attention_mask of x's shape is read
        if observed is not None:
            warnings.warn(
                f"InputEffectAudit {self.name!r}: {observed} has the inputs' shape {list(x.shape)} and holds 0 and 1, as "
                "an irregularly sampled series' observation mask does, but only `attention_mask` is read entry by entry: "
                "the entries where it is 0 are set by the interventions, given effects of their own and counted in the "
                "means; name the parameter `attention_mask` or pass it as that keyword (docs/your_model.md, 'Irregularly "
                "sampled series: observation masks')", ProbeContentsWarning, stacklevel=outside_package())
        if real is None:
            k = min(self.top_k, mean_abs.numel())
            top_values, top_groups = largest_k(mean_abs, k)  # equal effects (identical columns): lower group id first
            mean_abs_effect = float(mean_abs.mean())
        else:
            somewhere = real.any(0)
            k = min(self.top_k, int(somewhere.sum()))
            present = somewhere.nonzero().flatten()  # the groups real in some sample, by id: largest_k's order among them
            top_groups = present[largest_k(mean_abs[present], k)[1]]  # NaN last (a float16 overflow's inf - inf), as without padding
            top_values = mean_abs[top_groups]
            mean_abs_effect = float((effects.abs() * real).sum() / real.sum())
        result = AuditResult(self.name)
        note_non_finite_samples(result, effects if real is None else effects.masked_fill(~real, 0.0))  # which samples made NaN means
        result.vectors["mean_abs_effect"] = mean_abs
        result.vectors["mean_effect"] = mean
        result.maps["effect"] = broadcast_groups(effects, mask, x.shape)
        if codes is not None:  # nominal codes in float columns: a higher code is no higher value (no direction in the bars)
            result.meta["code_elements"] = codes.reshape(-1).nonzero().flatten().tolist()
        if real is not None and padding is not None:  # a group spanning real and padded positions (feature k of every node) set the real ones only
            result.maps["effect"] = result.maps["effect"].masked_fill(padding.to(x.device), 0)
        total = float(mean_abs.sum())
        result.scalars["mean_abs_effect"] = mean_abs_effect
        result.scalars["max_abs_effect"] = float(mean_abs.max())
        add_top_share(result, "", top_values, total, self.top_k, mean_abs.numel() if real is None else int(somewhere.sum()))
        ace_range = self._ace(model, probe, mask, max_batch_size)
        if ace_range is not None:
            result.vectors["ace_range"] = ace_range
            reached = ace_range.new_ones(ace_range.shape, dtype=torch.bool) if real is None else real[: self.ace_samples].any(0)
            result.scalars["mean_ace_range"] = float(ace_range[reached].mean()) if bool(reached.any()) else 0.0  # groups lying in padding left out
            lost = (~torch.isfinite(ace_range) & reached).nonzero().flatten().tolist()
            if lost:  # the curve's mean over the samples hit -inf (an action masked as illegal at some values): say why
                named = [self.feature_names[g] if self.feature_names is not None else g for g in lost]
                result.meta.setdefault("notes", []).append(
                    f"ace_range is not finite for groups {named[:8]}{' ...' if len(named) > 8 else ''} (so neither is "
                    "mean_ace_range): the explained output is not finite at some of the values the ACE curve sets them to (a "
                    "class the model rules out with -inf where a group takes those values, e.g. an action masked as illegal, "
                    "or a diverged model), so the curve's mean over the samples is -inf there and its range undefined; "
                    "`ace_values=None` leaves the curve out")
            head = x[: self.ace_samples].detach()
            if torch.equal(head, head[:1].expand_as(head)):  # quantiles of one value: a flat grid, 0 whatever the model
                result.meta.setdefault("notes", []).append(
                    f"ace_range is 0 for every group: the ACE curve sets groups to quantiles of the probe's first {head.shape[0]} "
                    "sample(s), which are one sample or copies of it, so every group's grid is one value; audit more, different samples")
        result.tables["top_groups"] = [
            {
                **group_key(g, self.feature_names),
                "mean_abs_effect": float(mean_abs[g]),
                "mean_effect": float(mean[g]),
                **({"ace_range": float(ace_range[g])} if ace_range is not None else {}),
                **group_region(mask, g, x, padding),  # a sequence whose lengths count its steps: steps, features
            }
            for g in top_groups.tolist()
        ]
        codes, tokens = code_reading(model, probe) if x.dtype in INDEX_DTYPES else ({}, [])
        if codes:  # a table's category codes: code 1 of one column is no code 1 of another (drawn as a table's bars)
            result.tables["top_codes"] = self._top_codes(x, result.maps["effect"], sorted(set(codes.values())), mask)
            result.meta["code_columns"] = codes
            if tokens:  # token ids beside the codes (user(x[:, 0]) + tok(x[:, 2:])): ranked apart from them
                apart = torch.ones(x.shape[1], dtype=torch.bool, device=x.device)
                apart[tokens] = False
                left = apart.expand_as(x) if padding is None else padding | apart
                result.tables["top_tokens"] = self._top_tokens(x, result.maps["effect"], left)
        elif not x.is_floating_point():
            result.tables["top_tokens"] = self._top_tokens(x, result.maps["effect"], padding)
        result.meta.update(groups=int(mean_abs.numel()), samples=int(x.shape[0]))
        said = baseline_text(self.baseline, x.dtype in INDEX_DTYPES, self.input_layer)  # uint8 pixels hold no ids
        if said is not None:  # the figures say what each group's effect is against
            result.meta["baseline"] = said
        result.meta.update(names_meta(self.feature_names, self.class_names, targets, mask, inputs=x, vocabulary=self.vocabulary,
                                      outputs=out, labels=probe.labels, model=task_model(model, self.output)))
        return result

    def _top_codes(self, codes: Tensor, effect: Tensor, columns: list[int], mask: Tensor) -> list[dict]:
        """The ``top_k`` (column, code) pairs of the category-code ``columns`` of ``codes`` ``[N, D]`` by mean |δ| over
        the rows holding them, named ``"<column>=<code>"`` (the column by its group's name where ``feature_names`` names
        the groups of a mask shared by the rows, else ``"column <j>"``)."""
        x, val = codes[:, columns].long(), effect[:, columns].abs().double()
        if int(x.min()) < 0:
            return []
        width = int(x.max()) + 1
        key = (torch.arange(len(columns), device=x.device) * width + x).flatten()
        count = torch.bincount(key, minlength=len(columns) * width)
        mean = torch.bincount(key, weights=val.flatten(), minlength=len(columns) * width) / count.clamp_min(1)
        mean[count == 0] = -1.0
        top = largest_k(mean, min(self.top_k, int((count > 0).sum())))[1]
        shared = mask.reshape(mask.shape[0], -1)[0] if mask.shape[0] == 1 and mask[0].numel() == codes.shape[1] else None
        rows = []
        for k in top.tolist():
            j, code = columns[k // width], k % width
            named = shared is not None and self.feature_names is not None and 0 <= int(shared[j]) < len(self.feature_names)
            name = self.feature_names[int(shared[j])] if named else f"column {j}"
            rows.append({"name": f"{name}={code}", "column": j, "code": code,
                         "mean_abs_effect": float(mean[k]), "count": int(count[k])})
        return rows

    def _top_tokens(self, ids: Tensor, effect: Tensor, padding: Tensor | None) -> list[dict]:
        """The ``top_k`` token ids by mean |δ| over their occurrences (``padding``, the probe's padding positions,
        excluded)."""
        keep = torch.ones_like(ids, dtype=torch.bool)
        if padding is not None:
            keep &= ~padding
        if self.special_tokens:
            keep &= ~torch.isin(ids, torch.tensor(self.special_tokens, dtype=ids.dtype, device=ids.device))
        tok, val = ids[keep].long(), effect[keep].abs().double()
        if tok.numel() == 0 or int(tok.min()) < 0:
            return []
        count = torch.bincount(tok)
        mean = torch.bincount(tok, weights=val) / count.clamp_min(1)
        mean[count == 0] = -1.0
        top = largest_k(mean, min(self.top_k, int((count > 0).sum())))[1]
        words = self.vocabulary
        return [{"token": int(t), **({"word": words[t]} if words is not None and t < len(words) else {}),
                 "mean_abs_effect": float(mean[t]), "count": int(count[t])} for t in top.tolist()]

    def _ace(self, model: nn.Module, probe: Probe, mask: Tensor, max_batch_size: int | None) -> Tensor | None:
        """Range of the ACE curve per group (``None`` when skipped or for token inputs)."""
        if self.ace_values is None or not probe.first.is_floating_point():
            return None
        sub = probe.subset(slice(0, self.ace_samples))
        bad = (~torch.isfinite(sub.first.detach())).reshape(len(sub), -1).any(1)  # [N]: one value per sample
        if bool(bad.any()):  # else the core's advice, `values` as a tensor, which this audit does not take
            rows = bad.nonzero().flatten().tolist()
            raise ValueError(f"InputEffectAudit's ACE curve sets groups to quantiles of the probe's values, which must be finite, "
                             f"but samples {rows[:8]}{' ...' if len(rows) > 8 else ''} of its first {len(sub)} hold NaN or "
                             "infinity; pass `ace_values=None` (a model that reads NaN as missing), or drop or impute them")
        ace_mask = mask if mask.shape[0] == 1 else mask[: self.ace_samples]
        options: dict[str, Any] = self.model_options(sub)
        with warnings.catch_warnings():  # a constant group (an image's blank border) has range 0, shown as such
            warnings.simplefilter("ignore", ConstantGroupsWarning)
            ace = average_causal_effect(model, sub.first, ace_mask, "quantiles", target=self.target,
                                        max_batch_size=max_batch_size, num_values=self.ace_values, **options)
        return ace.max(1).values - ace.min(1).values
