"""BackdoorAudit: is there a backdoor, which class does it target, what does the trigger look like,
which units carry it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from lightning_causal.audits.base import Audit, AuditResult, Probe, layer_names
from lightning_causal.audits.label_task import label_task, smoothed_multi_hot, soft_binary_targets
from lightning_causal.audits.options import (
    check_distinct_tags,
    check_names,
    check_one_label_per_sample,
    class_indices,
    class_label,
    multi_hot_labels,
    regression_labels,
    tag_safe,
    task_model,
)
from lightning_causal.causal.backdoor.flagging import resolve_max_ratio
from lightning_causal.causal.backdoor.neural_cleanse import (
    check_class_outputs,
    check_reverse_options,
    neural_cleanse,
    unattacked_note,
)
from lightning_causal.causal.backdoor.suspects import anomaly_scale, suspect_units
from lightning_causal.causal.backdoor.triggers import Trigger, attack_success_rate, trigger_effect
from lightning_causal.causal.engine.checks import (
    check_class_labels,
    check_float,
    check_int,
    check_seed,
    check_type,
)
from lightning_causal.causal.engine.forward import Forward, OutputSpec
from lightning_causal.causal.engine.input_sites import check_site
from lightning_causal.causal.engine.sample_independence import check_samples_independent
from lightning_causal.causal.engine.state import audit_mode, rng_preserved, rows_sum_to_one
from lightning_causal.causal.engine.units import per_layer_layouts

__all__ = ["BackdoorAudit"]


def _ruled_out_note(named: Sequence[object]) -> str:
    """The note of the classes :attr:`~lightning_causal.causal.backdoor.flagging.ReversedTriggers.ruled_out` (their
    labels ``named``), whose NaN statistics the table and the charts show with no word of why."""
    one = len(named) == 1
    who = f"class {named[0]} is" if one else f"classes {', '.join(map(str, named[:8]))}{' ...' if len(named) > 8 else ''} are"
    it, its = ("it", "its") if one else ("them", "their")
    return (f"{who} ruled out (output -inf on every probe sample, and the reversed trigger{'' if one else 's'} moved no sample into {it}): "
            f"Neural Cleanse gets no gradient towards an output of -inf, so {its} mask{'' if one else 's'} measure"
            f"{'s' if one else ''} no trigger: not flagged, left out of the median and the MAD ({its} anomaly index, norm "
            f"ratio and flag score are NaN), and whether a trigger opens {it} for other inputs is not tested")

#: Legend of the bound lines in the curves: the rule flags a class above (index) or below (score) them.
INDEX_BOUND = "flagged at or above"
SCORE_BOUND = "flagged at or below"


class BackdoorAudit(Audit):
    """Backdoor audit: a known trigger's effect, or Neural Cleanse detection, plus CARE suspect units.

    **With a trigger** (``trigger=``): the attack success rate on the probe (over samples whose
    class is not the target; labels from the probe, soft labels ``[N, C]`` by their largest entry, else the
    clean predictions), the trigger's
    average causal effect on the target logit ``E[f_t(T(x)) − f_t(x)]``, the clean accuracy
    (probe labels), the trigger as an image, and for each of ``layers`` the suspect units
    (:func:`~lightning_causal.causal.backdoor.triggers.suspect_units`: table, score vector, count).

    **Without** (``trigger=None``): every class's reverse-engineered trigger
    (:func:`~lightning_causal.causal.backdoor.neural_cleanse.neural_cleanse`; masks, patterns and stamped
    triggers as images), the anomaly index vector and per-class scalars
    ``anomaly_index/class_<c>``, ``max_anomaly_index``, ``flagged_count``, ``top_class`` (the class the rule ranks first,
    flagged or not: :attr:`~lightning_causal.causal.backdoor.flagging.ReversedTriggers.most_suspect`; NaN where every
    class is left out of the comparison), a table
    of flagged classes, a curve of the indices with the index rule's threshold and, under the ratio
    rule (default), a curve ``flag_score`` of each class's score with the bound it is flagged at; the ``norm_ratio`` vector
    (each mask norm over the median) and the ``flag_score`` vector (what the ratio rule flags
    on: the norm ratio, divided by the mask's concentration for images); for images also each
    mask's concentration (vector ``mask_concentration``). If a class is flagged and ``layers``
    are given, the suspect units of its reversed trigger. A flag of one of 2 classes (or of 2 besides the classes left out below), which may be a
    natural imbalance between them, is said in a note (the text card, the report) beside ``neural_cleanse``'s warning; so is a class
    every probe sample is predicted as, whose trigger had no sample to move: never flagged, its per-class values NaN,
    left out of the median, the MAD and ``max_anomaly_index``
    (:attr:`~lightning_causal.causal.backdoor.flagging.ReversedTriggers.unattacked`), and classes whose output is -inf on
    every probe sample and that their reversed trigger moved no sample into
    (:attr:`~lightning_causal.causal.backdoor.flagging.ReversedTriggers.ruled_out`: a class not yet seen, masked with
    -inf; not tested), alike; with 2 classes the other has none
    to be compared with, so ``max_anomaly_index`` is NaN (``AuditEarlyStopping`` on it, or on the class's NaN ``anomaly_index/<class>``,
    stops training there under its default ``check_finite=True``) and ``meta["anomaly_scale"]`` is absent.

    Cost: reverse engineering runs ``steps`` forward/backward passes of ``C × batch_size`` rows
    (≈ 5–20 s for 10 classes on the digits CNN on 2 CPU cores at the default 200 steps), so
    schedule this audit sparsely (e.g. ``every_n_epochs=5``) or pass a trigger. It enables
    gradients itself (the callback runs audits outside inference mode), draws its randomness from
    a private generator seeded with ``seed`` (same result every epoch for the same weights) and
    leaves no ``.grad`` on the parameters.

    Args:
        trigger: the known :class:`~lightning_causal.causal.backdoor.triggers.Trigger`, or ``None``.
        layers: module names for suspect units.
        num_classes: classes to reverse-engineer (default: the model's output width).
        steps: Neural Cleanse optimisation steps.
        max_samples: probe samples used (the first ones).
        top_k: rows of each suspect-unit table.
        threshold: anomaly index that flags a class under the index rule (``max_ratio=None``).
        unit_threshold: anomaly index that flags a suspect unit.
        reverse_options: further keyword arguments of ``neural_cleanse`` (``lr``, ``batch_size``, ...).
        seed: seed of the private generator.
        name: tag of the audit (default ``"backdoor"``).
        max_ratio: the ratio rule of ``neural_cleanse``: a class is flagged if its score (reversed
            mask norm over the median class's, divided by the mask's concentration for images) is
            at most this; ``"auto"`` (default) picks the bound for the score; ``None``: Neural
            Cleanse's index rule.
        class_names: one name per class: per-class scalars become ``anomaly_index/<name>``, the
            flagged-class table gains a ``name`` column and the reversed triggers are labelled. Two names that give
            one tag (``"hot dog"``, ``"hot_dog"``) are a ``ValueError``, also for names shared by
            ``CausalAuditCallback(class_names=)`` or ``audit_model(class_names=)`` (when the audit is validated).
        unit_dim: the dimension of each layer's output that indexes its units, one for all
            ``layers`` or a mapping layer -> dim (``-1`` for the neurons of ``[N, T, D]`` hidden
            states); default 1 (see :func:`~lightning_causal.causal.unit_effects`).
        num_heads: split the unit dimension into heads, for all layers or per layer (a mapping).
        output: which tensor of the model's return value holds the logits (default: a tensor,
            ``.logits`` of a Hugging Face ``ModelOutput`` or ``["logits"]``; see :class:`Audit`); the
            probe's forward arguments reach every forward pass.

    Examples:
        >>> from lightning_causal.causal import Trigger
        >>> t = Trigger(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 4.0]), target=1)
        >>> model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> r = BackdoorAudit(t, layers=["1"]).run(model, Probe(torch.rand(16, 2), torch.zeros(16, dtype=torch.long)))
        >>> sorted(k for k in r.scalars if "/" not in k)
        ['asr', 'clean_accuracy', 'trigger_ace']
    """

    whole_probe_rows_check = True  # its passes run the samples in batches of their own (Audit's attribute)

    def __init__(
        self,
        trigger: Trigger | None = None,
        layers: Sequence[str] = (),
        num_classes: int | None = None,
        steps: int = 200,
        *,
        max_samples: int = 256,
        top_k: int = 5,
        threshold: float = 2.0,
        unit_threshold: float = 3.0,
        reverse_options: Mapping[str, Any] | None = None,
        seed: int = 0,
        name: str | None = None,
        max_ratio: float | str | None = "auto",
        class_names: Sequence[str] | None = None,
        unit_dim: int | Mapping[str, int] | None = None,
        num_heads: int | Mapping[str, int] | None = None,
        output: OutputSpec = None,
    ) -> None:
        super().__init__(name, output=output)
        self.class_names = check_names("class_names", class_names)
        check_distinct_tags("class_names", self.class_names, "anomaly_index/<name>", "class")
        self.trigger = check_type("trigger", trigger, Trigger, none_ok=True)
        self.layers = layer_names(layers, allow_empty=True)
        self.unit_dim, self.num_heads = per_layer_layouts(unit_dim, num_heads, self.layers)
        self.num_classes = check_int("num_classes", num_classes, minimum=2, none_ok=True)
        self.steps = check_int("steps", steps, minimum=1)
        self.max_samples = check_int("max_samples", max_samples, minimum=1)
        self.top_k = check_int("top_k", top_k, minimum=1)
        self.threshold = check_float("threshold", threshold, minimum=0, open_min=True)
        self.unit_threshold = check_float("unit_threshold", unit_threshold, minimum=0, open_min=True)
        self.reverse_options = check_reverse_options(reverse_options)
        self.seed = check_seed(seed)
        resolve_max_ratio(max_ratio, True)  # validates
        self.max_ratio = max_ratio

    def validate(self, model: nn.Module, probe: Probe) -> None:
        # again here: names shared by CausalAuditCallback(class_names=) or audit_model(class_names=) arrive after __init__
        check_distinct_tags("class_names", self.class_names, "anomaly_index/<name>", "class")
        if isinstance(probe.inputs, tuple):
            raise ValueError("Expected a probe with a single input tensor for BackdoorAudit but got a tuple of inputs")
        for layer in self.layers:
            check_site(model, layer)
        if self.trigger is not None:
            self.trigger.check(probe.first)

    def _rows_of_first_pass(self, model: nn.Module, probe: Probe) -> int:
        return min(len(probe), self.max_samples)  # the run's samples, in one pass

    def run(self, model: nn.Module, probe: Probe, *, max_batch_size: int | None = None) -> AuditResult:
        self.validate(model, probe)
        x = probe.first[: self.max_samples]
        probe = probe.subset(torch.arange(x.shape[0], device=x.device)) if x.shape[0] < len(probe) else probe
        options = self.model_options(probe)
        with audit_mode(model):
            forward = Forward(model, num_samples=x.shape[0], **options)
            logits = forward(x)
            # the trigger search and the stamped copies run the samples in batches of their own
            with rng_preserved():  # its passes leave the later passes' draws (an MC-dropout model's) as they were
                check_samples_independent(forward, (x,), logits, f"BackdoorAudit {self.name!r}", alone_route=False)
        if logits.dim() == 1:  # one value per sample ([N], a squeezed logit): one output, as [N, 1] (not an IndexError)
            logits = logits.unsqueeze(1)
        if self.trigger is not None and logits.shape[1] < 2:
            raise ValueError(f"BackdoorAudit with a trigger measures the share of triggered samples classified as the target "
                             f"class and needs class logits [N, classes >= 2] but the model returned {logits.shape[1]} output "
                             "per sample; a binary classifier with one logit z can return torch.cat([-z, z], 1)")
        if self.trigger is None:  # too few outputs is said before what the labels are (a one-logit model's soft targets)
            check_class_outputs(self.num_classes if self.num_classes is not None else int(logits.shape[1]),
                                "BackdoorAudit without a trigger")
        tasked = task_model(model, self.output)
        task = label_task(tasked)
        if logits.shape[1] >= 2 and (multi_hot_labels(probe.labels, tasked)
                                     or task is None and smoothed_multi_hot(probe.labels) is not None):
            raise ValueError(
                f"BackdoorAudit counts a sample as attacked when its predicted class (the largest of the model's "
                f"{logits.shape[1]} outputs) is the target, but the probe's labels are multi-hot {list(probe.labels.shape)} "
                "(a multi-label classifier?): each label is its own decision. Audit label k as a binary classifier, "
                "`output=lambda out: torch.cat([-out[:, [k]], out[:, [k]]], 1)` (class 1: label k on) with labels "
                "`y[:, k].long()` (`unpack_batch=`)")
        soft = probe.labels is not None and probe.labels.dim() == 2 and rows_sum_to_one(probe.labels)  # refused below
        soft = soft or soft_binary_targets(probe.labels, int(logits.shape[1]), task=task)  # label smoothing's 0.05/0.95
        if not callable(self.output) and not soft and regression_labels(probe.labels, int(logits.shape[1]), task=task):
            raise ValueError(
                f"BackdoorAudit counts a sample as attacked when its predicted class (the largest of the model's "
                f"{logits.shape[1]} outputs) is the target, but the probe's labels are real-valued "
                f"{list(probe.labels.shape)} (a regression?): the largest of a regression's outputs (quantiles, horizons, "
                "targets) is no class, and a trigger that makes another output largest (a quantile crossing) is no "
                "attack. A suspected trigger's effect on output k is `input_effects` / InputEffectAudit(target=k) of its "
                "patch; outputs that are class scores trained on real-valued targets (Q-values) say so by `output=lambda "
                "out: ...` (a callable is taken as given) or a probe without labels, `unpack_batch=lambda b: (b[0], None, "
                "None)`")
        result = AuditResult(self.name, meta={"samples": x.shape[0]})
        if self.class_names is not None:
            result.meta["class_names"] = list(self.class_names)
        if self.trigger is not None:
            labels = probe.labels[: self.max_samples] if probe.labels is not None else None
            labels = class_indices(labels, task_model(model, self.output))  # soft labels [N, C]: their argmax
            if soft and labels is not None and labels.dim() == 1 and labels.is_floating_point():  # smoothed 0.05/0.95
                labels = (labels > 0.5).long()  # a binary classifier's classes (`.long()` would make every one 0)
            self._known(model, probe, labels, logits, result, max_batch_size)
        else:
            self._reverse(model, x, logits.shape[1], result, max_batch_size, options)
        return result

    def _known(self, model: nn.Module, probe: Probe, labels: Tensor | None, logits: Tensor, result: AuditResult,
               mbs: int | None) -> None:
        x, options = probe.first, self.model_options(probe)
        trigger = self.trigger.to(x.device)  # type: ignore[union-attr]
        if labels is not None:  # [N, C] left by class_indices: the model says multi-label or regression
            check_one_label_per_sample("BackdoorAudit", labels, x.shape[0], "for the attack success rate",
                                       model=task_model(model, self.output))
        if labels is not None and (labels.is_floating_point() or labels.dtype.is_complex):
            raise ValueError(f"Expected argument `probe.labels` to hold integer class indices (e.g. torch.long) for BackdoorAudit's "
                             f"attack success rate but got dtype {labels.dtype}; convert them with `.long()`")
        check_class_labels("probe.labels", labels, int(logits.shape[1]), outputs=logits)
        y = labels.to(x.device) if labels is not None else logits.argmax(1)
        if labels is None:
            result.meta["notes"] = ["no probe labels: the ASR counts samples by their predicted class"]
        else:
            result.scalars["clean_accuracy"] = float((logits.argmax(1) == y).double().mean())  # an exact share
        result.scalars["asr"] = attack_success_rate(model, x, y, trigger, max_batch_size=mbs, **options)
        keep = torch.nonzero(y != trigger.target).flatten()
        kept = self.model_options(probe.subset(keep))  # forward arguments of the kept samples
        result.scalars["trigger_ace"] = float(trigger_effect(model, x[keep], trigger, mbs, **kept).mean())
        if x.dim() in (4, 5):
            drawn = (trigger.mask * trigger.pattern).expand(x.shape[1:]).unsqueeze(0)
            # the frame where the mask stamps most: a black patch's mask * pattern is 0 on every frame
            frame = _drawn_frame(trigger.mask.expand(x.shape[1:]).unsqueeze(0), x, result, "the trigger's")
            result.images["trigger"] = _frame(drawn, frame)
            result.images["triggered_inputs"] = _frame(trigger.apply(x[:4]).detach(), frame)
        self._suspects(model, x, trigger, result, mbs, options)

    def _reverse(self, model: nn.Module, x: Tensor, width: int, result: AuditResult, mbs: int | None,
                 fwd_options: dict[str, Any]) -> None:
        c = self.num_classes if self.num_classes is not None else width
        check_class_outputs(c, "BackdoorAudit without a trigger")
        options = {"steps": self.steps, "threshold": self.threshold, "max_ratio": self.max_ratio, **self.reverse_options}
        res = neural_cleanse(model, x, c, generator=torch.Generator().manual_seed(self.seed), max_batch_size=mbs,
                             **{**fwd_options, **options})
        masks = torch.stack([t.mask for t in res.triggers])
        patterns = torch.stack([t.pattern for t in res.triggers])
        labels = [class_label(self.class_names, k) for k in range(c)]
        if x.dim() == 5 and masks.dim() == 5 and masks.shape[2] > 1:  # each class at its own frame: a flagged class's
            frames = _class_frames(masks, x, result)  # small mask may sit on a frame the others' large masks do not
            labels = [f"{label} (frame {f})" for label, f in zip(labels, frames.tolist())]
            at = (torch.arange(c, device=masks.device), slice(None), frames.to(masks.device))
            result.images.update(reversed_masks=masks[at], reversed_patterns=patterns[at],
                                 reversed_triggers=(masks * patterns)[at])
            result.meta["image_labels"] = {k: labels for k in ("reversed_masks", "reversed_patterns", "reversed_triggers")}
        elif x.dim() in (4, 5):
            frame = _drawn_frame(masks, x, result, "the reversed masks'")  # one frame [K, 1, 1, H, W]: shared by all
            result.images.update(reversed_masks=_frame(masks, frame), reversed_patterns=_frame(patterns, frame),
                                 reversed_triggers=_frame(masks * patterns, frame))
            result.meta["image_labels"] = {k: labels for k in ("reversed_masks", "reversed_patterns", "reversed_triggers")}
        result.vectors.update(anomaly_index=res.anomaly_index, mask_norm=res.mask_norms, reversed_asr=res.attack_rates,
                              norm_ratio=res.norm_ratio, flag_score=res.score)
        if res.concentration is not None:
            result.vectors["mask_concentration"] = res.concentration
        defined = res.anomaly_index[~res.anomaly_index.isnan()]  # an unattacked class's index is NaN
        result.scalars.update(max_anomaly_index=float(defined.max()) if defined.numel() else math.nan, flagged_count=float(len(res.flagged)),
                              top_class=math.nan if res.most_suspect is None else float(res.most_suspect))  # None: every class left out
        for k in range(c):
            item = tag_safe(labels[k]) if self.class_names is not None else f"class_{k}"
            result.scalars[f"anomaly_index/{item}"] = float(res.anomaly_index[k])
        result.tables["flagged_classes"] = [
            {"class": k, **({"name": labels[k]} if self.class_names is not None else {}),
             "flag_score": float(res.score[k]),  # what the default rule flags on: first, so the text card shows it
             "anomaly_index": float(res.anomaly_index[k]), "mask_norm": float(res.mask_norms[k]),
             "norm_ratio": float(res.norm_ratio[k]),
             "attack_rate": float(res.attack_rates[k]),
             **({"concentration": float(res.concentration[k])} if res.concentration is not None else {})}
            for k in res.flagged
        ]
        # the line of the rule in use only: a threshold that flags nothing would read as a missed flag
        result.curves["anomaly_index"] = {"x": list(range(c)), "anomaly_index": res.anomaly_index.tolist()}
        compared = res.mask_norms[[k for k in range(c) if k not in res.left_out]]  # the norms the index reads
        if compared.numel() >= 2:  # the axis's σ: 1.4826·MAD, or the fallback where MAD = 0
            result.meta["anomaly_scale"] = anomaly_scale(compared)
        if res.max_ratio is None:  # the index rule flags: at or above its threshold
            result.curves["anomaly_index"][INDEX_BOUND] = float(self.threshold)
        else:  # the ratio rule flags: each class's score at or below its bound
            result.curves["flag_score"] = {"x": list(range(c)), "flag_score": res.score.tolist(), SCORE_BOUND: float(res.max_ratio)}
        result.meta.update(flagged=res.flagged, mask_norms=res.mask_norms.tolist(), max_ratio=res.max_ratio)
        if c - len(res.left_out) == 2 and res.flagged:  # neural_cleanse warns too; a note stays on the text card and report whatever the filters
            result.meta.setdefault("notes", []).append(  # short: whole on the card (each class left out has a note of why)
                f"class {labels[res.flagged[0]]} flagged among 2 classes ({'others left out; ' if c > 2 else ''}index ±0.67 "
                "at any sizes): a natural imbalance is flagged too, confirm with BackdoorAudit(trigger)")
        for k in res.unattacked:  # neural_cleanse warns too
            result.meta.setdefault("notes", []).append(unattacked_note(labels[k], x.shape[0], c))
        if res.ruled_out:  # else NaN in the table with no word of why
            result.meta.setdefault("notes", []).append(_ruled_out_note([labels[k] for k in res.ruled_out]))
        if res.flagged:
            self._suspects(model, x, res.triggers[res.flagged[0]], result, mbs, fwd_options)

    def _suspects(self, model: nn.Module, x: Tensor, trigger: Trigger, result: AuditResult, mbs: int | None,
                  fwd_options: dict[str, Any]) -> None:
        for layer in self.layers:
            su = suspect_units(model, x, trigger, layer, threshold=self.unit_threshold, max_batch_size=mbs,
                               unit_dim=self.unit_dim[layer], num_heads=self.num_heads[layer], **fwd_options)
            result.vectors[f"suspect_score/{layer}"] = su.score
            result.scalars[f"{layer}/flagged_units"] = float(len(su.flagged))
            result.tables[f"suspects/{layer}"] = [
                {"unit": u, "score": float(su.score[u]), "effect_triggered": float(su.effect_triggered[u]),
                 "effect_clean": float(su.effect_clean[u]), "anomaly_index": float(su.anomaly_index[u]),
                 "flagged": u in su.flagged}
                for u in su.ranking()[: self.top_k]
            ]


def _drawn_frame(clips: Tensor, x: Tensor, result: AuditResult, whose: str) -> int | None:
    """The frame of the probe's clips ``x`` ``[N, C, T, H, W]`` that the pictures draw (``None`` for images
    ``[N, C, H, W]``): where ``clips`` (a trigger's mask, the reversed masks: where the stamp acts, whatever it stamps,
    a black patch too; of ``T`` frames, or of one shared by all, a mask reversed with ``channel_dim=2``) have the
    largest summed magnitude, the middle frame where every frame holds as much; named in a note on the card."""
    if clips.dim() != 5 or x.dim() != 5:
        return None
    mass = clips.detach().abs().double().sum((0, 1, 3, 4)).expand(x.shape[2])  # [T]
    t, alike = mass.numel(), bool((mass == mass.max()).all())
    frame = t // 2 if alike else int(mass.argmax())
    result.meta["image_frame"] = f"frame {frame} of {t}"  # in the pictures' titles
    result.meta.setdefault("notes", []).append(
        f"the pictures show frame {frame} of the clips' {t} (dimension 2 of [N, C, T, H, W]): "
        + (f"the middle one, {whose} frames being alike" if alike else f"{whose} largest"))
    return frame


def _class_frames(masks: Tensor, x: Tensor, result: AuditResult) -> Tensor:
    """Each class's frame ``[K]`` of its reversed mask ``masks`` ``[K, C, T, H, W]`` (``T`` > 1): where its mask has the
    largest summed magnitude, the middle frame where every frame holds as much; said in a note on the card. One frame for
    every class would be chosen by the unattacked classes' large masks, and a flagged class's small mask on another
    frame drawn blank."""
    mass = masks.detach().abs().double().sum((1, 3, 4))  # [K, T]
    t = mass.shape[1]
    alike = (mass == mass.max(1, keepdim=True).values).all(1)
    frames = torch.where(alike, torch.full_like(alike, t // 2, dtype=torch.long), mass.argmax(1))
    result.meta.setdefault("notes", []).append(
        f"each class's reversed trigger is drawn at the frame of the clips' {t} (dimension 2 of [N, C, T, H, W]) its "
        "mask holds most, named beside the class (the middle one where its frames are alike)")
    return frames.cpu()


def _frame(clips: Tensor, frame: int | None) -> Tensor:
    """Frame ``frame`` of clips ``[N, C, T, H, W]`` as images ``[N, C, H, W]`` (the one frame of a mask shared by
    every frame, ``T`` 1); images as they are (``None``)."""
    return clips if frame is None else clips[:, :, frame if clips.shape[2] > 1 else 0]
