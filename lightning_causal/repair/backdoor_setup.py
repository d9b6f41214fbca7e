"""What :class:`~lightning_causal.repair.backdoor.BackdoorSuppressionTerm` prepares before fine-tuning.

:class:`TriggerSetup` holds the term's :meth:`~TriggerSetup.setup`: a frozen reference copy of the
model, the trigger reverse-engineered by Neural Cleanse when none is given (the flagged classes'
triggers, binarized, completed and dilated as asked; the regions the adversarial search covers), the
suspect units of layers given by name; and its :meth:`~TriggerSetup.state_dict` /
:meth:`~TriggerSetup.load_state_dict`, which keep all of it in a checkpoint. A mixin: the attributes
it reads are the term's (set by its ``__init__``).
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from lightning_causal._console import console_info
from lightning_causal.causal.backdoor.feature_shift import (
    MAX_CONTRAST_RATIO,
    Contrast,
    feature_shifted,
    output_layer,
)
from lightning_causal.causal.backdoor.neural_cleanse import (
    ReversedTriggers,
    check_class_outputs,
    neural_cleanse,
)
from lightning_causal.causal.backdoor.reverse import reverse_trigger
from lightning_causal.causal.backdoor.suspects import suspect_units
from lightning_causal.causal.backdoor.triggers import Trigger
from lightning_causal.causal.engine.frozen import copied, freeze
from lightning_causal.causal.engine.kept_attributes import held_tensors
from lightning_causal.causal.engine.state import audit_mode, check_logits, rng_preserved
from lightning_causal.causal.engine.user_frame import outside_package
from lightning_causal.repair.backdoor_triggers import binarized, dilated, grown_mask
from lightning_causal.repair.term_setup import inputs_said

__all__ = ["CONTRAST_COMPLETION", "TriggerSetup"]

#: Pixels within which the trigger of a class flagged on the contrast only (``contrast=True``) is
#: completed to a 0.99 attack rate on the model; such a trigger gets no region search. Chosen on the
#: development cases of ``benchmarks/backdoor_protocol.py`` (``benchmarks/study_contrast_repair.py``,
#: variant ``pc1``): searching around the contrast's few pixels, where they lie on the target
#: class's strokes, taught the repair to ignore those strokes (one fold's target class kept 2.5% of
#: its images).
CONTRAST_COMPLETION = 1


def _trigger_state(trigger: Trigger) -> dict[str, Any]:
    return {"mask": trigger.mask, "pattern": trigger.pattern, "target": trigger.target}


def _detection_state(detection: ReversedTriggers | None) -> dict[str, Any] | None:
    if detection is None:
        return None
    state = {f.name: getattr(detection, f.name) for f in dataclasses.fields(detection) if f.init}
    state["triggers"] = [_trigger_state(t) for t in detection.triggers]
    return state


def _detection_from(state: dict[str, Any] | None) -> ReversedTriggers | None:
    if state is None:
        return None
    fields = dict(state)
    fields["triggers"] = [Trigger(**t) for t in fields["triggers"]]
    return ReversedTriggers(**fields)


def _fingerprint(module: nn.Module) -> Tensor:
    """Each parameter's sum of absolute values and of squares (float64, on the CPU): what shows a frozen module's
    weights moved in place (an EMA teacher), whatever device it has moved to since."""
    with torch.no_grad():
        try:
            sizes = [(t.detach().abs() if t.is_complex() else t.detach()).double().abs() for t in module.parameters()]
            return torch.stack([torch.stack([v.sum(), v.square().sum()]) for v in sizes]).cpu() if sizes else torch.zeros(0, 2, dtype=torch.float64)
        except Exception:  # noqa: BLE001 - a tensor with no float view (quantized, meta): no check, never a crash
            return torch.zeros(0, 2, dtype=torch.float64)


class _LeftOut(nn.Module):
    """A child of the network that the reference's forward did not run at set-up and whose parameters are all frozen
    (``requires_grad=False``: a distillation teacher held by a wrapping ``LightningModule`` beside the student its
    forward runs), left out of the frozen copy: no weights of its own. Where the reference reaches it after all (a
    branch some batches take; a call, or a read by attribute such as ``self.enc.bn(self.enc.l(x))`` or a method of the
    child), the child is copied then, as the whole copy would have held it: its parameters as they are (no optimizer
    moves them), its buffers as at set-up (a BatchNorm's running statistics, which the network's own training passes
    move), in eval mode and frozen (:func:`~lightning_causal.causal.engine.frozen.freeze`); the copy serves every
    later call and read, outside the module tree. Where its parameters moved since set-up (an EMA teacher updated in
    place) it warns, once, at that first reach: the copy holds them as they are then. A resumed fit's placeholder takes the buffers and
    parameters as at its first reach. A trainable child is always copied (:func:`_frozen_copy`)."""

    def __init__(self, name: str, live: nn.Module, resumed: bool = False) -> None:
        super().__init__()
        self.left_out = name
        object.__setattr__(self, "_live", live)  # not a submodule: no weights in the reference's state_dict
        object.__setattr__(self, "_print", None if resumed else _fingerprint(live))
        object.__setattr__(self, "_buffers0", None if resumed else  # as at set-up: the network's passes move them
                           {k: b.detach().clone() for k, b in live.named_buffers()})

    def _child(self) -> nn.Module:
        """The network's own child, checked once, at the first reach (:meth:`_copied`), against its fingerprint at
        set-up (none for a resumed fit's)."""
        live, was = self.__dict__["_live"], self.__dict__["_print"]
        now = None if was is None else _fingerprint(live)
        if now is not None and not (now.shape == was.shape and torch.allclose(now, was, rtol=1e-9, atol=0.0)):
            warnings.warn(f"BackdoorSuppressionTerm's frozen reference left out {self.left_out!r} (frozen, not run on the "
                          "training inputs at set-up) and runs the network's own, whose weights or buffers have moved since "
                          "set-up (updated in place, an EMA teacher, or a BatchNorm's statistics updated by the network's "
                          "training passes): the reference uses them as they are now, not as copied at set-up. Pass "
                          "`setup_inputs=` that reach it, so that it is copied.", stacklevel=2)
        return live

    def _copied(self) -> nn.Module:
        """The child copied and frozen at the first read by attribute (kept outside the module tree, as the child)."""
        held = self.__dict__.get("_copy")
        if held is None:
            held = copy.deepcopy(self._child())
            saved = self.__dict__["_buffers0"] or {}
            with torch.no_grad():
                for k, b in held.named_buffers():
                    if k in saved and saved[k].shape == b.shape:
                        b.copy_(saved[k])
            held = freeze(held.eval())
            object.__setattr__(self, "_copy", held)
        return held

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self._copied()(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if "_live" not in self.__dict__ or name.startswith("__"):
                raise
            return getattr(self._copied(), name)  # read in functional code or by a submodule: a frozen copy's


def _largest(model: nn.Module, left_out: Callable[[str, nn.Module], bool]) -> dict[str, nn.Module]:
    """The largest submodules of ``model`` holding parameters or buffers that ``left_out(name, module)`` says, by name
    (none inside another)."""
    out: dict[str, nn.Module] = {}
    for name, m in model.named_modules():
        if not name or any(name.startswith(k + ".") for k in out):
            continue
        if (next(m.parameters(), None) is not None or next(m.buffers(), None) is not None) and left_out(name, m):
            out[name] = m
    return out


TRIAL_ROWS = 64
"""The rows of each pass of the set-up's trial of the reference's modules (:func:`_reference`): every training input
is run, in passes of at most these rows (a mixture of experts routes each row to an expert of its own: two rows reach
two experts at most)."""


def _run_modules(model: nn.Module, forward: Callable[[Tensor], Any], inputs: Tensor) -> tuple[set[int], list[Tensor]] | None:
    """The ids of the modules of ``model`` that ``forward`` calls on ``inputs`` (in passes of :data:`TRIAL_ROWS` rows)
    in eval mode, with its outputs (:func:`~lightning_causal.causal.engine.state.audit_mode`: modes, buffers and random
    states put back); ``None`` where a pass fails (a forward argument of the batch's rows)."""
    run: set[int] = set()
    handles = [m.register_forward_pre_hook(lambda mod, _args: run.add(id(mod))) for m in model.modules()]
    try:
        with audit_mode(model):
            outs = [forward(chunk) for chunk in inputs.split(TRIAL_ROWS)]
    except Exception:  # noqa: BLE001 - the whole network is copied, as before
        return None
    finally:
        for h in handles:
            h.remove()
    return (run, outs) if all(isinstance(out, Tensor) for out in outs) else None


def _reference(model: nn.Module, forward_of: Callable[[nn.Module], Callable[[Tensor], Any]],
               inputs: Tensor | None) -> nn.Module:
    """The term's frozen reference of ``model`` (:func:`_frozen_copy`) without the children of ``model`` that its
    forward (``forward_of(model)``) does not call on any of ``inputs`` and whose parameters are all frozen (a
    distillation teacher beside the student; a trainable child, a branch some batches take, and a module inside a
    child it calls, an expert the trial's rows were not routed to, are copied), where the copy gives the
    network's outputs on them (``torch.equal``, eval mode: a module read without a call, an ``nn.ParameterList`` in
    functional code, or a forward that draws random numbers, keeps the whole copy); the whole network where there are
    no inputs (a term given its trigger, set up without them) or a pass fails."""
    if not isinstance(inputs, Tensor) or inputs.dim() == 0 or inputs.shape[0] == 0:
        return _frozen_copy(model)
    seen = _run_modules(model, forward_of(model), inputs)
    if seen is None:
        return _frozen_copy(model)
    reference = _frozen_copy(model, run=seen[0])
    try:
        with torch.no_grad(), rng_preserved():
            forward = forward_of(reference)
            same = all(torch.equal(forward(chunk), out) for chunk, out in zip(inputs.split(TRIAL_ROWS), seen[1]))
    except Exception:  # noqa: BLE001 - a module left out is read: the whole copy
        same = False
    return reference if same else _frozen_copy(model)


def _frozen_copy(model: nn.Module, state: Mapping[str, Any] | None = None, run: set[int] | None = None) -> nn.Module:
    """A frozen copy of ``model`` (given the weights ``state`` where there are any) for the consistency term
    (:func:`~lightning_causal.causal.engine.frozen.freeze`: eval mode, no gradient, and the observers of a
    quantization-aware model's fake-quant modules off: it quantizes with the scales it was copied with).

    Only what the reference's forward runs is copied: the children of ``model`` holding tensors that the set-up's
    passes did not call (``run``, :func:`_reference`: a distillation teacher beside the student, 68,516 parameters
    copied for a 418-parameter student; not a module inside a child called, which other inputs may reach) and whose
    parameters are all frozen (``requires_grad=False``; a trainable child is copied: a branch some batches take trains)
    become :class:`_LeftOut` placeholders, which run the network's own child if reached after all; with ``state`` (a
    resumed fit), those whose tensors the saved reference lacks (left out when it was saved; a reference saved whole
    is copied whole). ``run=None`` and no ``state``: the whole network."""
    if state is not None:  # the modules whose weights the saved reference lacks (none where it was saved whole)
        left = _largest(model, lambda name, m: bool(keys := m.state_dict(prefix=name + ".").keys()) and not keys & state.keys())
    elif run is not None:  # the frozen children the passes did not call, nor any module inside them
        left = _largest(model, lambda name, m: "." not in name and not any(id(s) in run for s in m.modules())
                        and next(m.parameters(), None) is not None and not any(p.requires_grad for p in m.parameters()))
    else:
        left = {}
    memo: dict[int, Any] = {id(m): _LeftOut(name, m, resumed=state is not None) for name, m in left.items()}
    reference = copied(model, memo).eval()  # weak proxies held as themselves, a pruned layer's weight detached
    if state is not None:
        reference.load_state_dict(state)  # a checkpoint's reference: its flags as saved, switched off below
    return freeze(reference)


class TriggerSetup:
    """The set-up part of :class:`~lightning_causal.repair.backdoor.BackdoorSuppressionTerm` (a mixin)."""

    # the term's attributes (BackdoorSuppressionTerm.__init__) that set-up reads and writes
    trigger: Trigger | None
    triggers: list[Trigger]
    suspects: dict[str, list[int]] | list[str] | None
    detection: ReversedTriggers | None
    contrast_detection: ReversedTriggers | None
    contrast: bool | None
    contrast_options: dict[str, Any]
    reference: nn.Module | None
    regions: list[Tensor]
    _range: tuple[float, float]
    _generator: torch.Generator | None

    def state_dict(self) -> dict[str, Any]:
        """What :meth:`setup` prepared, as plain values: the reference's weights and the tensors it holds outside them
        (a memory bank kept as a plain attribute or in a datastore object: :func:`held_tensors`; not a left-out child's
        fingerprint, :class:`_LeftOut`, which a resumed placeholder does not take), the triggers (and regions, detection,
        suspect units found) and the augmentation generator's state. A read-only table kept as a plain tensor attribute
        is saved too (its size: the term cannot tell it from a memory bank not yet written, which a resume needs as set
        up); registered as a non-persistent buffer (``register_buffer(name, t, persistent=False)``) it is in neither
        checkpoint, and a resumed reference holds the network's, as the network does."""
        return {
            "reference": None if self.reference is None else dict(self.reference.state_dict()),
            # a memory bank kept as a plain tensor attribute or in a datastore object: no state_dict's, as set up
            "reference_held": {} if self.reference is None else {
                name: t.detach() for name, (holder, _, t) in held_tensors(self.reference).items()
                if not isinstance(holder, _LeftOut)},
            "triggers": [_trigger_state(t) for t in self.triggers],
            "detection": _detection_state(self.detection),
            "contrast_detection": _detection_state(getattr(self, "contrast_detection", None)),
            "suspects": copy.deepcopy(self.suspects),
            "regions": list(self.regions),
            "range": list(self._range),
            "generator": None if self._generator is None else self._generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any], model: nn.Module) -> None:
        """Restore :meth:`state_dict`'s output (a resumed fit): the reference is a copy of
        ``model`` given the saved weights and the tensors saved beside them (a memory bank as set up, not the
        network's at resume), the generator continues where it was saved.

        Args:
            state: what :meth:`state_dict` returned.
            model: the network the reference copy is made from.
        """
        self._generator = torch.Generator().manual_seed(self.seed)
        if state["generator"] is not None:
            self._generator.set_state(state["generator"])
        self.reference = None
        if state["reference"] is not None:
            self.reference = _frozen_copy(model, state["reference"])
            held = held_tensors(self.reference)  # the copy holds the network's at resume, not those set up
            for name, saved in state.get("reference_held", {}).items():  # absent from checkpoints before it
                if name in held:
                    holder, key, now = held[name]
                    setattr(holder, key, saved.to(now.device))
        self.triggers = [Trigger(**t) for t in state["triggers"]]
        self.detection = _detection_from(state["detection"])
        self.contrast_detection = _detection_from(state.get("contrast_detection"))  # absent from checkpoints before it
        self.suspects = copy.deepcopy(state["suspects"])
        self.regions = list(state["regions"])
        self._range = (float(state["range"][0]), float(state["range"][1]))

    def setup(self, model: nn.Module, train_inputs: Tensor | None = None) -> None:
        """Freeze a reference copy of ``model`` (``distill_weight > 0``), reverse-engineer the
        trigger (``trigger=None``), find suspect units (layer names) and seed the augmentations.

        The reference is the model as it is now, its memory too (a bank kept in a buffer, a plain attribute or a
        datastore object, saved with :meth:`state_dict`): a bank empty now, which the fine-tune's training passes fill,
        stays empty in the reference, and the consistency term holds the network to what it gave without memory. Set
        the term up once the bank holds what the model was trained with.

        Args:
            model: the network to fine-tune.
            train_inputs: training inputs ``[N, ...]``; required for ``trigger=None`` and for suspect
                layer names.
        """
        self._generator = torch.Generator().manual_seed(self.seed)
        if self.distill_weight > 0:  # the modules the term's forward runs (not a teacher beside the student)
            self.reference = _reference(model, self._forward, train_inputs)
        if self.trigger is None:
            if train_inputs is None:
                raise ValueError("BackdoorSuppressionTerm(trigger=None) needs `train_inputs` to reverse-engineer the trigger")
            self._reverse_engineer(model, train_inputs)
        if isinstance(self.suspects, list):
            if train_inputs is None:
                raise ValueError("BackdoorSuppressionTerm with suspect layer names needs `train_inputs` to find the units")
            if not self.triggers:  # trigger=None, nothing flagged, when_unflagged="skip": nothing to suppress
                self.suspects = {}
                return
            found = {}
            for layer in self.suspects:
                su = suspect_units(model, train_inputs, self.triggers[0], layer,
                                   unit_dim=self.unit_dims[layer], num_heads=self.head_counts[layer])
                found[layer] = su.flagged or su.ranking()[:1]
            self.suspects = found

    def _reverse_engineer(self, model: nn.Module, train_inputs: Tensor) -> None:
        options = {"output": self.output, "additional_forward_args": self.additional_forward_args, **self.reverse_options}
        with audit_mode(model):
            num_classes = check_logits(self._forward(model)(train_inputs[:2]), "BackdoorSuppressionTerm").shape[1]
        check_class_outputs(num_classes, "BackdoorSuppressionTerm(trigger=None)")
        self.detection = neural_cleanse(model, train_inputs, num_classes, **options)
        # its outputs checked by Neural Cleanse (an evidential head's concentrations warned of there, on 4 rows or
        # more): the term's first step does not warn of the same model again
        self._logits_checked = train_inputs.shape[0] >= 4
        flagged = self.detection.flagged
        by_contrast: list[int] = []
        if self._contrast_runs(model, train_inputs, num_classes):
            by_contrast = [c for c in self._contrast_flags(model, train_inputs, num_classes, options) if c not in flagged]
            flagged = sorted([*flagged, *by_contrast])
        if not flagged:
            top = self.detection.most_suspect
            if top is None:  # every class left out: no reversed trigger measures anything to suppress
                warnings.warn("BackdoorSuppressionTerm: no class flagged by Neural Cleanse, and none can be compared: every "
                              f"class is left out (predicted for every input given: {self.detection.unattacked}; ruled "
                              f"out with -inf on every one of them: {self.detection.ruled_out}), so no reversed trigger measures "
                              "a backdoor and nothing is suppressed, whatever `when_unflagged` (the term only holds the "
                              "model to its state before repair)", stacklevel=outside_package())
                self.triggers = []
                return
            if self.when_unflagged == "skip":
                warnings.warn("BackdoorSuppressionTerm: no class flagged by Neural Cleanse; nothing is suppressed (the term "
                              f"only holds the model to its state before repair). The most anomalous class is {top}.", stacklevel=outside_package())
                self.triggers = []
                return
            warnings.warn(f"BackdoorSuppressionTerm: no class flagged by Neural Cleanse; suppressing the most anomalous "
                          f"class {top} (flag score {float(self.detection.score[top]):.2f}, anomaly index "
                          f"{float(self.detection.anomaly_index[top]):.2f})", stacklevel=outside_package())
            flagged = [top]
        else:
            scores = ", ".join(f"{c} ({float(self.detection.score[c]):.2f})" for c in flagged if c not in by_contrast)
            if by_contrast:
                scores += (", " if scores else "") + ", ".join(
                    f"{c} (contrast score {float(self.contrast_detection.score[c]):.2f})" for c in by_contrast)
            bounds = f"bound {self.detection.max_ratio}" + (
                f"; contrast bound {self.contrast_detection.max_ratio}" if self.contrast_detection is not None else "")
            completed = (f" (flagged on the contrast only: the contrast's trigger completed within {CONTRAST_COMPLETION} "
                         f"pixel{'s' if CONTRAST_COMPLETION != 1 else ''} on the model, no region search)" if by_contrast else "")
            console_info(f"BackdoorSuppressionTerm: Neural Cleanse flagged class(es) {scores} (flag score; {bounds}); "
                         f"their reversed triggers are suppressed{completed}")
        self.triggers = [self.detection.triggers[c] for c in flagged if c not in by_contrast]
        if self.adversarial_region is not None and train_inputs.dim() == 4:  # the regions pair with these first triggers
            self._range = (float(train_inputs.min()), float(train_inputs.max()))
            self.regions = [grown_mask(self._support(t), self.adversarial_region).amax(0, keepdim=True) for t in self.triggers]
        # a class flagged on the contrast only: its reversed trigger is the part of a planted stamp that the
        # shifted copy does not share, often a few of its pixels on the class's own strokes. Completed within
        # CONTRAST_COMPLETION pixels of it, and not searched around (see the constant's comment)
        self.triggers += [self._completed(model, train_inputs, self.contrast_detection.triggers[c], options, CONTRAST_COMPLETION)
                          for c in by_contrast]
        if self.complete is not None and train_inputs.dim() == 4:
            self.triggers += [self._completed(model, train_inputs, t, options, self.complete) for t in self.triggers]
        if self.binarize is not None:
            self.triggers = [binarized(t, self.binarize, self.box_fill) for t in self.triggers]
        if self.dilate and self.triggers[0].mask.dim() == 3:
            self.triggers += [dilated(t, self.dilate) for t in self.triggers]

    def _contrast_runs(self, model: nn.Module, train_inputs: Tensor, num_classes: int) -> bool:
        """Whether contrastive detection runs: ``contrast=True`` (refusals in :meth:`_contrast_flags`), or
        ``None`` where it can: ``model(x)`` logits, image inputs ``[N, C, H, W]``, an ``nn.Linear`` output layer."""
        if self.contrast is not None:
            return bool(self.contrast)
        if self.output is not None or self.additional_forward_args is not None or train_inputs.dim() != 4:
            return False
        try:
            output_layer(model, num_classes)
        except ValueError:
            return False
        return True

    def _contrast_flags(self, model: nn.Module, train_inputs: Tensor, num_classes: int, options: Mapping[str, Any]) -> list[int]:
        """Classes flagged by Neural Cleanse on :class:`~lightning_causal.causal.backdoor.feature_shift.Contrast`
        of ``model`` and its feature-shifted copy (``contrast=True``); the run is kept on ``contrast_detection``."""
        if train_inputs.dim() != 4:
            raise ValueError(f"Expected image inputs [N, C, H, W] with `contrast=True` (its flag bound was chosen on images "
                             f"only) but got {list(train_inputs.shape)}")
        shift = {k: v for k, v in self.contrast_options.items() if k != "max_ratio"}
        generator = torch.Generator().manual_seed(self.seed)
        with audit_mode(model):
            shifted = feature_shifted(model, train_inputs, num_classes, generator=generator, **shift)
        contrast = Contrast(model, shifted)
        with audit_mode(model), torch.no_grad():  # a sample on which the two rule out every class between them (disjoint
            # top-k sets) has no contrast in any class, and Neural Cleanse refuses it; one on which they leave one class
            # (a top-1 gate: the contrast 0 there) has no other class to move it to, the search moved by its mask penalty
            # alone (its cross-entropy constant): both searched without; NaN or +inf is no class ruled out (a copy that
            # diverged: the search's own refusal names it)
            none = torch.cat([(~contrast(part).flatten(1).isneginf()).sum(1) <= 1 for part in train_inputs.split(256)])
        if bool(none.any()):
            rows, count = none.nonzero().flatten().tolist(), len(train_inputs)
            if len(rows) == count and self.contrast:  # asked for: refused, as what else it cannot run on
                raise ValueError(f"BackdoorSuppressionTerm(contrast=True): the model and its feature-shifted copy rule out "
                                 f"(-inf) every class between them, or all but one, on every one of the {count} samples of "
                                 "`train_inputs` (a top-1 gate, a top-k gate or a mask whose classes the tuning moved), so "
                                 "their contrast has no two classes to compare (a trigger search would be moved by its "
                                 "mask penalty alone); pass `contrast=None` (skipped with a warning there) or `contrast=False`"
                                 + inputs_said())
            shown = f"{rows[:8]}{' ...' if len(rows) > 8 else ''}"
            rest = (f"contrastive detection runs on the other {count - len(rows)}" if len(rows) < count
                    else "contrastive detection is skipped (`contrast=False` turns it off)")
            warnings.warn(f"BackdoorSuppressionTerm: the model and its feature-shifted copy rule out (-inf) every class "
                          f"between them, or all but one, on the samples {shown} of `train_inputs` ({len(rows)} of "
                          f"{count}: a top-1 gate, a top-k gate or a mask whose classes the tuning moved), where their "
                          f"contrast has no two classes to compare (a trigger search there would be moved by its mask "
                          f"penalty alone); {rest}{inputs_said()}", stacklevel=outside_package())
            if len(rows) == count:
                return []
            train_inputs = train_inputs[~none]
        run = {**options, "max_ratio": self.contrast_options.get("max_ratio", MAX_CONTRAST_RATIO),
               "given": len(none)}  # its words count what the user gave too
        self.contrast_detection = neural_cleanse(contrast, train_inputs, num_classes, **run)
        return self.contrast_detection.flagged

    def _support(self, trigger: Trigger) -> Tensor:
        """A reversed trigger's support: mask above ``binarize`` (0.25 when off), else its maximum."""
        support = (trigger.mask > (self.binarize or 0.25)).to(trigger.mask.dtype)
        return support if support.any() else (trigger.mask >= trigger.mask.max()).to(trigger.mask.dtype)

    def _completed(self, model: nn.Module, train_inputs: Tensor, trigger: Trigger, options: Mapping[str, Any], pixels: int) -> Trigger:
        """The flagged class's trigger reversed again to a 0.99 attack rate, its mask confined to
        the detected trigger's support grown by ``pixels`` (:func:`reverse_trigger`)."""
        region = grown_mask(self._support(trigger), pixels)
        keys = ("steps", "lr", "init_lambda", "batch_size", "patience", "input_range", "max_batch_size", "generator",
                "output", "additional_forward_args")
        return reverse_trigger(model, train_inputs, trigger.target, region=region, target_asr=0.99,
                               **{key: v for key, v in options.items() if key in keys})
