"""Neural Cleanse (Wang et al. 2019): reverse-engineer, for every class, the smallest trigger that
sends inputs to it, and flag the classes whose trigger is anomalously small (MAD anomaly index
of the mask norms, :func:`~lightning_causal.causal.backdoor.triggers.mad_anomaly_index`).

The search itself (shared with :func:`~lightning_causal.causal.backdoor.reverse.reverse_trigger`) is in
``trigger_search.py``, the localised starts in ``search_starts.py``."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from lightning_causal.causal.backdoor.flagging import (
    COMPACTNESS,
    MAX_NORM_RATIO,
    MAX_PLAIN_RATIO,
    MAX_RATIO,
    TARGET_ASR,
    ReversedTriggers,
    left_out_words,
    norm_statistics,
    resolve_max_ratio,
    resolve_target_asr,
)
from lightning_causal.causal.backdoor.mask_statistics import (
    compact_ratio,
    mask_concentration,
    norm_ratio,
)
from lightning_causal.causal.backdoor.search_starts import (
    MAX_STARTS,
    _best_start,
    _local_theta,
    _window_corners,
)
from lightning_causal.causal.backdoor.trigger_search import (  # noqa: F401 - _squash kept importable from here
    _check_finite_logits,
    _check_reverse_args,
    _init_theta,
    _optimisation_dtype,
    _optimise_classes,
    _prepare,
    _ruled_out,
    _squash,
    _unattacked,
    mask_shape,
)
from lightning_causal.causal.backdoor.triggers import (
    SEARCH_WAY_OUT,
    Trigger,
    _check_model,
    _logits,
    _predicted,
)
from lightning_causal.causal.engine.batching import map_rows, rows_per_pass
from lightning_causal.causal.engine.checks import check_float, check_int
from lightning_causal.causal.engine.forward import Forward, OutputSpec
from lightning_causal.causal.engine.noise import warn_separate_noise
from lightning_causal.causal.engine.probe_warnings import ProbeContentsWarning
from lightning_causal.causal.engine.state import audit_mode, frozen_params
from lightning_causal.causal.engine.user_frame import outside_package

__all__ = ["COMPACTNESS", "MAX_NORM_RATIO", "MAX_PLAIN_RATIO", "MAX_RATIO", "TARGET_ASR", "ReversedTriggers", "check_reverse_options", "compact_ratio", "mask_concentration", "mask_shape",
           "neural_cleanse", "norm_ratio", "reverse_engineer_triggers"]


def check_class_outputs(width: int, caller: str) -> None:
    """Neural Cleanse reverses one trigger per class: refuse a model of fewer than 2 outputs with
    what to do (``caller`` names who asks).

    Args:
        width: the number of the model's outputs.
        caller: who asks, for the message.

    Examples:
        >>> check_class_outputs(10, "BackdoorAudit")
    """
    if width < 2:
        raise ValueError(f"{caller} reverses one trigger per class and needs a model with at least 2 outputs but it "
                         f"returns {width}; a binary classifier with one logit z can return torch.cat([-z, z], 1) "
                         "(two-class logits), or pass the trigger")


def _final_rates(model: Forward, x: Tensor, pred: Tensor, masks: Tensor, patterns: Tensor, rows: int) -> Tensor:
    """``[C]`` attack rate of each class's trigger on the inputs not already predicted as that class (NaN, 0 of 0,
    for a class every input is predicted as)."""
    n, c = x.shape[0], masks.shape[0]

    def evaluate(idx: Tensor) -> Tensor:
        cls, s = idx // n, idx % n
        xt = (1 - masks[cls]) * x[s] + masks[cls] * patterns[cls]
        return (_predicted(model(xt.to(x.dtype), rows=s)) == cls).float()  # a row of no class reaches none

    hit = map_rows(c * n, rows, evaluate, x.device).view(c, n)
    keep = (pred.unsqueeze(0) != torch.arange(c, device=x.device).unsqueeze(1)).float()
    return (hit * keep).sum(1) / keep.sum(1)


def unattacked_note(label: object, n: int, num_classes: int, given: int | None = None) -> str:
    """What :func:`neural_cleanse` says of class ``label`` when every one of its ``n`` inputs is already predicted
    as it (:attr:`~lightning_causal.causal.backdoor.flagging.ReversedTriggers.unattacked`): its warning, and the
    note of :class:`~lightning_causal.audits.backdoor.BackdoorAudit`.

    Args:
        label: the class, as the reader knows it (its index or its name).
        n: the number of inputs.
        num_classes: the number of classes (with 2, the other class has none to be compared with).
        given: the number of inputs the user gave, where the caller left some out before the search (the ``n``
            searched are what is left): the note counts both.

    Examples:
        >>> unattacked_note(0, 64, 10)[:63]
        'every one of the 64 inputs is already predicted as class 0: its'
        >>> unattacked_note(0, 29, 10, given=64)[:87]
        'every one of the 29 inputs searched (of the 64 given, 35 left out) is already predicted'
    """
    lone = "; with 2 classes the other class has none to be compared with (its anomaly index is NaN too)" if num_classes == 2 else ""
    inputs = f"{n} inputs" if given is None or given == n else f"{n} inputs searched (of the {given} given, {given - n} left out)"
    # what was decided within the text card's 160 characters (reporting.summary cuts a note there): "not flagged"
    return (f"every one of the {inputs} is already predicted as class {label}: its reversed trigger had no input to move, "
            f"so it is not flagged; its anomaly index, norm ratio, flag score and attack rate are NaN (its mask shrank under "
            f"the mask penalty alone and is left out of the median and the MAD){lone}; inputs the model puts in other "
            "classes are needed to test it")


def neural_cleanse(
    model: nn.Module,
    x: Tensor,
    num_classes: int,
    steps: int = 300,
    *,
    lr: float = 0.1,
    init_lambda: float = 1e-3,
    target_asr: float | str = "auto",
    batch_size: int = 64,
    patience: int = 10,
    threshold: float = 2.0,
    input_range: tuple[float, float] | None = None,
    generator: torch.Generator | None = None,
    max_batch_size: int | None = None,
    min_concentration: float | None = None,
    window: int = 3,
    starts: int = 1,
    max_ratio: float | str | None = "auto",
    compactness: float = COMPACTNESS,
    output: OutputSpec = None,
    additional_forward_args: Any = None,
    channel_dim: int | None = 1,
    given: int | None = None,
) -> ReversedTriggers:
    """Reverse-engineer the smallest trigger of every class and flag anomalously small ones
    (Neural Cleanse, Wang et al. 2019).

    For each class ``c``, with ``m_c = (tanh θ_m + 1)/2`` (one mask shared by the channels) and
    ``p_c = lo + (hi − lo)(tanh θ_p + 1)/2``, Adam (β = (0.5, 0.9)) minimises

    .. math:: \\mathbb{E}_x\\, CE\\big(f((1 − m_c)\\,x + m_c\\,p_c),\\ c\\big) + λ_c \\lVert m_c \\rVert_1

    over inputs not already predicted as ``c``. ``λ_c`` starts at ``init_lambda``; after
    ``patience`` consecutive steps at or above ``target_asr`` it is multiplied by 1.5, after
    ``patience`` steps below divided by 1.5^1.5. The smallest mask reaching ``target_asr`` is kept
    (the last one if none did). A backdoor target needs a much smaller trigger than the other
    classes. Two flagging rules:

    - **ratio rule** (default, ``max_ratio``): flag class ``c`` if its score
      ``s_c = (|m_c|_1 / median_k |m_k|_1) / κ_c^p <= max_ratio`` (:func:`compact_ratio`, with
      ``κ_c`` the :func:`mask_concentration` of image masks and ``p = compactness``; without
      images or with ``p = 0`` the score is the :func:`norm_ratio`). ``max_ratio="auto"`` is
      :data:`MAX_RATIO` (0.75) on the compact score, :data:`MAX_NORM_RATIO` (0.6) on the
      plain norm ratio of images (``compactness=0``) and :data:`MAX_PLAIN_RATIO` (0.35) on
      inputs that are not images (signals, tabular rows; chosen on the development set of
      ``benchmarks/bench_backdoor_nonimage.py``, where 0.6 flagged 5 of 12 clean models: on
      such inputs a class with a small natural trigger is common, and detection is weak).
    - **index rule** (``max_ratio=None``, plain Neural Cleanse): flag ``c`` if its anomaly index
      (:func:`mad_anomaly_index`, positive = small) is ``>= threshold``. With ``C`` classes and
      normal norms a clean model has some class at index 2 with probability
      ``≈ 1 − (1 − 0.023)^C`` (≈ 21% for 10 classes).

    The defaults (``target_asr="auto"``: 0.5 with the compact score, 0.99 without;
    ``compactness=1``; the bounds above) were chosen on the
    development cases of ``benchmarks/backdoor_protocol.py`` (two sets: 86 fold models whose
    patch backdoor was learned, 39 clean ones): Neural Cleanse's own 0.99 rate makes a weakly
    learned trigger (one that moves only 55–80% of inputs by itself) add a class's natural
    strokes until its mask is no smaller than a clean class's; at 0.5 the reversed mask is the
    stamp, or the part of it that the model learned, and the concentration keeps the spread
    strokes of easy clean classes from being flagged. There the target was flagged on 75 of 86
    learned models (67 with ``target_asr=0.99`` and the plain ratio ≤ 0.6), with 0 of 39 false
    alarms either way. The index rule flagged 4 of 10 clean development models. Plain Neural
    Cleanse: ``target_asr=0.99, compactness=0, max_ratio=None``.

    Each mask's :func:`mask_concentration` is returned for image inputs; ``min_concentration``
    (e.g. 0.8) flags a class only if its trigger is also that compact (a hard cut instead of
    the score's weight). Both cost triggers that are not patches (blended, spread-out): use
    ``compactness=0`` for those.

    ``θ_m`` and ``θ_p`` are optimised in the model's dtype, at least float32: on a bfloat16 or
    float16 model the stamped inputs are cast to the model's dtype (Adam's steps in float16 would be
    NaN), the triggers are returned in the model's dtype and their norms and indices in float32.

    Localised starts (``starts > 1``): the objective is not convex, and from a uniform random
    mask the optimiser can settle on a class's natural strokes and miss a larger patch elsewhere.
    Starting also from masks concentrated in each part of the image finds a compact trigger
    there if one exists, at ``starts`` times the rows per step. Each class keeps the start its
    score ranks best, so that a compact stamp is not traded for smaller spread-out strokes.

    All classes (and starts) are optimised together: one forward pass of
    ``C × starts × batch_size`` rows per step (the (class, start) pairs split into groups of
    ``max_batch_size // batch_size`` if ``max_batch_size`` is set; the random draws are the same
    either way). Deterministic for a given ``generator`` (default:
    seed 0); the global RNG is never used. The model runs in eval mode with its parameters'
    ``requires_grad`` off (no ``.grad`` is created) and every flag restored afterwards. Gradients
    are enabled inside, so this also works under ``torch.no_grad``/``inference_mode``.

    A class every input is already predicted as (a model that puts all of ``x`` in one class; few samples)
    gives its trigger no input to move: its loss is the mask penalty alone and its mask shrinks to nearly
    nothing, which the rules would read as a planted trigger (an untrained 3-class MLP predicting class 0
    everywhere had class 0 at anomaly index 79). Such a class is ``unattacked``: never flagged, left out of the
    median and the MAD (:func:`~lightning_causal.causal.backdoor.flagging.norm_statistics`), its index, norm
    ratio, score and attack rate NaN, and a
    :class:`~lightning_causal.causal.engine.probe_warnings.ProbeContentsWarning` names it. A class whose output is -inf
    on every input ``x`` gives the search no gradient towards it. Where its reversed trigger moved no input into it
    either (attack rate 0; ``logits.masked_fill(~seen, float("-inf"))`` of a class a class-incremental model has not
    seen yet), its mask, grown as ``λ`` falls, measures no trigger (a 4-class model of 8 outputs had its 4 seen classes
    flagged at norm ratio 0.2 with the 4 ruled out in the median): such a class is ``ruled_out``, left out alike, its
    index, norm ratio and score NaN, never flagged, and whether a trigger opens it for other inputs is not tested. One
    the trigger did reach (a class the model rules out only for inputs like ``x``) is compared as any other. The other
    classes' statistics are those of their own norms.

    With 2 classes (or 2 besides the ``ruled_out`` ones) the rule can only compare the two triggers' sizes, so a flag
    warns (confirm it with a known trigger), also a :class:`~lightning_causal.causal.engine.probe_warnings.ProbeContentsWarning`: on
    the 2 samples of an audit's dry run, where it is ignored, 1 of 10 untrained 4-8-2 MLPs on the synthetic
    fairness data is flagged (8 of 10 before the class the 2 samples were predicted as was left out), and 1 of
    10 on 256 samples.

    Args:
        model: classifier returning logits ``[N, num_classes]``.
        x: clean inputs ``[N, ...]`` (images ``[N, C, H, W]`` get a ``[1, H, W]`` mask; see
            ``channel_dim``).
        channel_dim: the input dimension whose entries share one mask entry (:func:`mask_shape`):
            1 (default: channels), ``-1`` for features-last sequences ``[N, T, F]``, ``None``: none.
        num_classes: number of classes (``>= 2``).
        steps: optimisation steps.
        lr: Adam learning rate.
        init_lambda: initial ``λ``.
        target_asr: attack rate a trigger must reach (``"auto"``: 0.5 with the compact score,
            0.99 without).
        batch_size: inputs per step and class.
        patience: steps before ``λ`` changes.
        threshold: anomaly index of the index rule.
        input_range: ``(low, high)`` of the pattern (default: the range of ``x``).
        generator: private random generator.
        max_batch_size: rows per forward pass (the samples' first pass is checked against rows run alone at every
            ``max_batch_size``, :func:`~lightning_causal.causal.engine.stacked_rows.rows_alone_checked`: each step of
            the search stacks ``batch_size`` samples, so a model branching on a statistic of its batch is refused).
        min_concentration: ``None`` (default) or a number in (0, 1]: also require
            ``mask_concentration >= min_concentration`` to flag (image inputs only).
        window: side of :func:`mask_concentration`'s square.
        max_ratio: the ratio rule's bound: ``"auto"`` (default), a number, or ``None`` (the index
            rule with ``threshold``).
        compactness: the exponent ``p`` of the concentration in the score (0: the norm ratio).
        output: which tensor of the model's return value holds the logits
            (:class:`~lightning_causal.causal.engine.forward.Forward`).
        additional_forward_args: further arguments of the model (Captum's convention; tensors
            with one row per input follow their rows).
        given: the number of inputs the user gave, where the caller left some out of ``x`` before the search
            (``BackdoorSuppressionTerm``'s contrast: samples of no two classes to compare): the messages that count
            the inputs count both (``None``: ``x`` is what the user gave).
        starts: optimisation starts per class (1 to 10; ``> 1`` for image inputs only). Start 0
            is Neural Cleanse's random one (so ``starts=1`` is plain Neural Cleanse); start
            ``s >= 1`` puts the mask at 0.6 inside one window of half the image's side (the
            four corners, the centre, then the edge midpoints) and 0.02 elsewhere. All starts
            run batched together; each class keeps, over the starts that reached ``target_asr``
            (start 0's if none did), the mask of lowest ``|m|_1 / κ^p``: the rule's score (the
            median is common to all starts), the smallest mask when the score is the norm ratio.

    Returns:
        :class:`ReversedTriggers`.

    Examples:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
        >>> res = neural_cleanse(model, torch.rand(8, 1, 2, 2, generator=torch.Generator().manual_seed(0)), 3, steps=5)
        >>> len(res.triggers), res.triggers[2].target, res.anomaly_index.shape
        (3, 2, torch.Size([3]))
    """
    _check_model(model)
    check_float("compactness", compactness, minimum=0.0)
    compact = isinstance(x, Tensor) and x.dim() == 4 and compactness > 0
    target_asr = resolve_target_asr(target_asr, compact)
    _check_reverse_args(x, num_classes, steps, lr, init_lambda, target_asr, batch_size, patience, generator)
    check_float("threshold", threshold, minimum=0.0, open_min=True)
    check_int("window", window, minimum=1)
    check_int("starts", starts, minimum=1, maximum=MAX_STARTS)
    check_int("given", given, minimum=int(x.shape[0]), none_ok=True)
    if starts > 1 and x.dim() != 4:
        raise ValueError(f"Expected image inputs [N, C, H, W] with `starts` > 1 but got {list(x.shape)}")
    if min_concentration is not None:
        check_float("min_concentration", min_concentration, minimum=0.0, maximum=1.0, open_min=True)
        if x.dim() != 4:
            raise ValueError(f"Expected image inputs [N, C, H, W] with `min_concentration` but got {list(x.shape)}")
    max_ratio = resolve_max_ratio(max_ratio, compact, image=x.dim() == 4)
    run = _prepare(model, x, steps, lr, init_lambda, target_asr, batch_size, patience, input_range, generator,
                   max_batch_size, output, additional_forward_args, channel_dim)
    fwd, cfg, g, mbs, mshape, batches, dev = run.fwd, run.cfg, run.generator, run.max_batch_size, run.mshape, run.batches, x.device
    b = cfg.batch_size
    with torch.inference_mode(False):
        x = x.detach().clone()
        opt = _optimisation_dtype(x)
        theta_m = [_init_theta((num_classes, *mshape), g, dev).to(opt)]
        theta_p = [_init_theta((num_classes, *x.shape[1:]), g, dev).to(opt)]
        for corner in _window_corners(x.shape[-2], x.shape[-1], starts - 1):  # drawn after start 0: it stays as it was
            theta_m.append(_local_theta(num_classes, mshape, corner, dev).to(opt))
            theta_p.append(_init_theta((num_classes, *x.shape[1:]), g, dev).to(opt))
        theta_m, theta_p = torch.cat(theta_m), torch.cat(theta_p)  # row s * C + c: start s of class c
        row_class = torch.arange(num_classes, device=dev).repeat(starts)
        with audit_mode(model, grad=True), frozen_params(model), torch.enable_grad():
            with torch.no_grad():
                warn_separate_noise(fwd, (x,), "neural_cleanse")  # each step of the search sees another draw
                pred = _logits(model, x, mbs, fwd, "neural_cleanse", way_out=SEARCH_WAY_OUT)
                _check_finite_logits(pred, "neural_cleanse")
            if pred.shape[1] != num_classes:
                raise ValueError(f"Expected argument `num_classes` to match the model's {pred.shape[1]} outputs but got {num_classes}")
            clean_ruled_out = _ruled_out(pred)  # -inf on every input: no gradient towards the class
            pred = pred.argmax(1)
            per_pass = num_classes * starts if mbs is None else max(1, mbs // b)
            parts = [
                _optimise_classes(fwd, x, pred, row_class[rows], theta_m[rows], theta_p[rows], batches, cfg)
                for rows in torch.arange(num_classes * starts, device=dev).split(per_pass)
            ]
            masks, patterns, lambdas, reached = (torch.cat(t).detach() for t in zip(*parts))
            if starts > 1:
                masks, patterns, lambdas = _best_start(masks, patterns, lambdas, reached, num_classes, window,
                                                       float(compactness) if compact else 0.0)
            masks, patterns = masks.to(x.dtype), patterns.to(x.dtype)  # the triggers in the model's dtype, their norms in >= float32
            with torch.no_grad():
                rates = _final_rates(fwd, x, pred, masks, patterns, mbs or rows_per_pass(model, (x,), forward=fwd))
    norms = masks.flatten(1).to(_optimisation_dtype(x)).sum(1)
    triggers = [Trigger(masks[c], patterns[c], c) for c in range(num_classes)]
    conc = mask_concentration(masks, window) if x.dim() == 4 else None
    unattacked = _unattacked(pred)  # no input to move: its trigger says nothing
    # a class -inf on every input that no reversed trigger reached either: its mask measures no trigger (one the search
    # did reach, a class -inf only on these inputs, is a trigger like any other)
    ruled_out = [k for k, r in zip(clean_ruled_out, rates[clean_ruled_out].tolist()) if r == 0] if clean_ruled_out else []
    index, ratio = norm_statistics(norms, unattacked + ruled_out)
    result = ReversedTriggers(triggers, index, norms, rates, lambdas, float(threshold), conc,
                              None if min_concentration is None else float(min_concentration),
                              max_ratio, ratio, float(compactness), unattacked, ruled_out)
    if unattacked:
        warnings.warn(unattacked_note(unattacked[0], x.shape[0], num_classes, given), ProbeContentsWarning,
                      stacklevel=outside_package())
    if num_classes - len(result.left_out) == 2 and result.flagged:  # two classes compared: the model's, or those left
        among = "of a model with 2 classes" if num_classes == 2 else (
            f"among the 2 classes it compares (the other {num_classes - 2} of the model's {num_classes} left out: "
            f"{left_out_words(result)})")
        warnings.warn(
            f"Neural Cleanse flagged class {result.flagged[0]} {among}: with two classes the median-based anomaly index "
            "means little (±0.67 whatever the two triggers' sizes: the median of two is their mean, the MAD half their "
            "difference), the rule can only compare the two triggers' sizes, and a natural imbalance between the "
            "classes is flagged as well (a clean binary tabular model was flagged in a trial). Confirm with a known "
            "trigger before repairing", ProbeContentsWarning, stacklevel=outside_package())  # a dry run's 2 samples flag most 2-class models
    return result


def reverse_engineer_triggers(model: nn.Module, x: Tensor, num_classes: int, **options: Any) -> tuple[list[Trigger], Tensor]:
    """Neural Cleanse's per-class triggers and anomaly indices; see :func:`neural_cleanse`
    (which also returns the norms, attack rates and flagged classes; ``options`` are its keyword
    arguments). Under plain Neural Cleanse's index rule a class is flagged at an index ``>= 2``;
    the default rule (:func:`neural_cleanse`'s ``max_ratio``) flags by the trigger's size relative
    to the median, and can flag classes whose index is below 2: read ``neural_cleanse(...).flagged``
    for the classes it flags. With 2 classes the index is always ``±0.67`` (NaN where every input is predicted as
    one of them: :attr:`~lightning_causal.causal.backdoor.flagging.ReversedTriggers.unattacked`).

    Args:
        model: the classifier, as in :func:`neural_cleanse`.
        x: clean inputs ``[N, ...]``, as in :func:`neural_cleanse`.
        num_classes: the number of classes, as in :func:`neural_cleanse`.
        **options: keyword arguments of :func:`neural_cleanse`.

    Examples:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
        >>> triggers, index = reverse_engineer_triggers(model, torch.ones(4, 1, 2, 2), 2, steps=3)
        >>> [t.target for t in triggers], index.shape
        ([0, 1], torch.Size([2]))
    """
    res = neural_cleanse(model, x, num_classes, **options)
    return res.triggers, res.anomaly_index


def check_reverse_options(options: Any, name: str = "reverse_options") -> dict[str, Any]:
    """``options`` as a dict of :func:`neural_cleanse`'s keyword arguments, so that a misspelt key
    fails where it is given, not when training starts.

    Args:
        options: a mapping of :func:`neural_cleanse`'s keyword arguments, or ``None`` (none).
        name: the argument's name, for the messages.

    Examples:
        >>> check_reverse_options({"steps": 50})
        {'steps': 50}
    """
    import inspect

    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(f"Expected argument `{name}` to be None or a mapping of neural_cleanse's options but got {type(options).__name__}")
    allowed = set(inspect.signature(neural_cleanse).parameters) - {"model", "x", "num_classes"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(f"Expected the keys of argument `{name}` to be options of neural_cleanse, {sorted(allowed)}, but got {unknown}")
    return dict(options)

