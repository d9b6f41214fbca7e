"""BackdoorSuppressionTerm: unlearn a backdoor while fine-tuning on a little clean data.

The term's set-up and checkpoint state (:mod:`lightning_causal.repair.backdoor_setup`) and its loss
parts (:mod:`lightning_causal.repair.backdoor_parts`) are mixins of their own modules.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn

from lightning_causal.audits.label_task import class_distributions, class_indices
from lightning_causal.causal.backdoor.neural_cleanse import ReversedTriggers, check_reverse_options
from lightning_causal.causal.backdoor.triggers import Trigger
from lightning_causal.causal.engine.checks import (
    check_choice,
    check_float,
    check_int,
    check_seed,
    check_type,
)
from lightning_causal.causal.engine.forward import Forward, OutputSpec, check_output_spec
from lightning_causal.causal.engine.input_sites import check_site
from lightning_causal.causal.engine.interventions import capture
from lightning_causal.causal.engine.state import audit_mode
from lightning_causal.causal.engine.units import per_layer_layouts
from lightning_causal.causal.engine.user_frame import outside_package
from lightning_causal.repair.augment import resolve_augment
from lightning_causal.repair.backdoor_parts import (
    _CHECKPOINTED,
    _CHECKPOINTED_LATER,
    _CHECKPOINTED_ONE_PASS,
    _NEVER_RUN_IN_TRAINING,
    _SKIPPED_STEPS,
    StepParts,
    SuppressionParts,
    _at_least_float32,
    _CallShifts,
)
from lightning_causal.repair.backdoor_setup import TriggerSetup
from lightning_causal.repair.backdoor_triggers import (
    _check_share,
    binarized,
    dilated,
    search_regions,
)
from lightning_causal.repair.base import RepairTerm
from lightning_causal.repair.paired_rows import PairedPasses, pass_records

__all__ = ["BATCH_ARGUMENTS_REFUSED", "BackdoorSuppressionTerm", "binarized", "dilated"]

SuppressionPath = Literal["auto", "units", "logit", "none"]
WhenUnflagged = Literal["skip", "top"]
_PATHS = get_args(SuppressionPath)
_UNFLAGGED = get_args(WhenUnflagged)


_CONTRAST_KEYS = ("epochs", "alpha", "lr", "batch_size", "max_ratio")
#: Why the term refuses the batch's forward arguments, and the way out (its loss, and the set-up of a repair module).
BATCH_ARGUMENTS_REFUSED = (
    "BackdoorSuppressionTerm takes no forward arguments from the batch (unpack_batch's third part): its "
    "stamped and augmented copies are rows of their own, which per-sample arguments (the table of "
    "model(image, tab)) cannot follow, and its set-up (trigger=None: Neural Cleanse) runs the model without them; give "
    "it batches of one input tensor (a model of one input: a wrapper whose forward splits torch.cat([image.flatten(1), "
    "tab], 1), the trigger's mask and pattern shaped for it), and arguments shared by every call to the term's "
    "`additional_forward_args=`")


def _check_contrast_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    check_type("contrast_options", options, Mapping, none_ok=True)
    unknown = sorted(set(options or {}) - set(_CONTRAST_KEYS))
    if unknown:
        raise ValueError(f"Expected the keys of argument `contrast_options` to be among {list(_CONTRAST_KEYS)} but got {unknown}")
    return dict(options or {})


def _check_suspects(suspects: object) -> dict[str, list[int]] | list[str] | None:
    if suspects is None:
        return None
    if isinstance(suspects, Mapping):
        out = {}
        for layer, units in suspects.items():
            units = [units] if isinstance(units, int) else list(units)
            if not isinstance(layer, str) or not units or not all(isinstance(u, int) and not isinstance(u, bool) and u >= 0 for u in units):
                raise ValueError(f"Expected argument `suspects` to map layer names to non-empty lists of unit indices but got {suspects!r}")
            out[layer] = units
        return out
    if isinstance(suspects, str):
        suspects = [suspects]
    if isinstance(suspects, Sequence) and suspects and all(isinstance(s, str) and s for s in suspects):
        return list(suspects)
    raise ValueError(f"Expected argument `suspects` to be None, a mapping layer -> units or a list of layer names but got {suspects!r}")


class _HeldWeakly(Forward):
    """A :class:`Forward` holding its model by a weak reference (the term's cache keys it by that model)."""

    @property  # type: ignore[override]
    def model(self) -> nn.Module:
        model = self._model()
        if model is None:  # pragma: no cover - the cache drops the Forward with its model
            raise ReferenceError("the model of this Forward was garbage-collected")
        return model

    @model.setter
    def model(self, model: nn.Module) -> None:
        self._model = weakref.ref(model)


class BackdoorSuppressionTerm(TriggerSetup, SuppressionParts, RepairTerm):
    r"""Remove a backdoor by fine-tuning on a little clean data: a penalty on the trigger's causal
    path and unlearning on triggered copies, while a consistency term holds the model to what it
    was before repair on clean and augmented inputs.

    For a clean batch ``(x, y)`` of ``N`` rows, the trigger ``T`` (target ``t``) and ``f_0``, a
    frozen copy of the model taken at :meth:`setup`, the term adds augmented copies ``x̃`` of the
    batch (``augment``: mixup within the batch and 1-pixel shifts for images; see
    :mod:`~lightning_causal.repair.augment`) and computes, over the rows ``r`` of ``[x; x̃]``:

    .. math::
        R = β \, \underbrace{\tfrac{1}{N} \sum_{r:\, y_r \ne t} \max\big(0,\ p_t(T(x_r)) − sg[p_t(x_r)]\big)}_{\text{causal path}}
          + α \, \underbrace{\big(\overline{CE}(f(T(x)), y) + \overline{CE}_{y = t}(f(T(x)), y)\big)}_{\text{unlearning}}
          + γ \, \underbrace{\overline{KL}_r\big(f_0(x_r) \,\Vert\, f(x_r)\big)}_{\text{consistency}}

    - **Causal path** (default): the trigger's effect on the target's probability, clipped at 0 and
      measured against the unstamped row (``sg``: no gradient), summed over the clean and augmented
      rows and divided by ``N``. Rows whose label (either source label of a mixup row) is the
      target are left out: their unstamped side is the target already. With ``suspects`` (layer →
      units; CARE, Sun et al. 2022): the mean squared shift of the suspect units caused by the
      trigger over their variance on the clean and the stamped rows,
      ``mean_l [mean_{r,u} (h_u(T(x_r)) − sg[h_u(x_r)])² / sg[Var_{r,u}{h_u(x_r), h_u(T(x_r))}]]``
      (:func:`~lightning_causal.repair.backdoor_parts.scaled_shift`, between 0 and 4): in no
      layer's units, so that ``path_weight`` means the same on any layer.
    - **Stochastic layers**: a stamped row is compared with its own clean row under the same
      dropout / DropPath / stochastic-depth masks. Where the model's pass draws random numbers
      (read again at every step from the pass it runs first), the stamped rows run as a pass of their own from
      the clean pass's random state and buffers, with the clean pass's BatchNorm batch statistics
      (:class:`~lightning_causal.repair.paired_rows.PairedPasses`); BatchNorm's running statistics
      are then updated by the clean rows alone, and a buffer written in training (spectral norm's power iteration)
      advances once a step. A model that draws nothing runs both halves in one pass; so does,
      with a warning, one that runs a training-mode BatchNorm inside an activation-checkpointed segment, whose
      backward recomputation would run without the pairing.
    - **Unlearning** (Neural Cleanse's mitigation, Wang et al. 2019): triggered copies of the clean
      rows keep their *true* labels; with ``balance`` the target class's own rows count again
      as a group (mean over them), so the repair learns "the trigger says nothing", not "the
      trigger means: not the target".
    - **Consistency** (knowledge distillation, Hinton et al. 2015, with the model before repair as
      the teacher; on augmented inputs too, i.e. function matching, Beyer et al. 2022): the mean KL
      divergence of the repaired model's predictions from ``f_0``'s over the clean and augmented
      rows. An augmented row is left out (counts 0) when ``f_0`` predicts a suppressed target on
      it that neither of its source rows had: the teacher's backdoor firing on an augmentation
      is not behaviour to keep.

    With ``trigger=None``, :meth:`setup` reverse-engineers the trigger from the training inputs
    (:func:`~lightning_causal.causal.backdoor.neural_cleanse.neural_cleanse`) and suppresses every
    flagged class's trigger, :func:`binarized` at ``binarize`` (``None``: the soft reversed
    trigger), plus, with ``complete``, the same class's trigger completed around it (below), and
    with ``dilate > 0``, :func:`dilated` copies (rows take the triggers in turn).
    On images, each flagged trigger's support grown by ``adversarial_region`` pixels is searched
    every step (:meth:`adversarial_rows`; I-BAU's minimax, Zeng et al. 2022, confined there): from a
    random start, ``adversarial_steps`` signed-gradient steps (Madry et al. 2018) raise ``log p_t``;
    unlearning and (logit) path average the stamped rows and these. Detection finds the part of a
    planted stamp the model learned best; the search finds what still flips the model around it.
    The flagged classes and their flag scores are logged (Lightning's logger, INFO) and kept on
    ``detection.flagged``. If no class is flagged, ``when_unflagged="skip"`` (default) suppresses nothing: the term then
    only holds the model to ``f_0`` (a no-op repair of a clean model); ``"top"`` suppresses the
    most anomalous class anyway. ``suspects`` given as layer names are found at setup by
    ``suspect_units`` (the flagged units, else the top one).

    Cost per batch: one forward of ``2(1 + K)N`` rows (``K`` augmentations; ``(1 + K)N`` without a
    trigger) plus ``(1 + K)N`` rows of ``f_0``, and one copy of the model; with a region search,
    ``adversarial_steps`` forward and input-gradient passes and one more forward of ``(1 + K)N`` rows.
    Measured defaults and their ablation: ``benchmarks/RESULTS.md`` (backdoor protocol; it repairs at
    twice the training rate, 4e-3: at 1e-3, 10-epoch repairs were under-trained and lost accuracy).

    Args:
        trigger: the known :class:`~lightning_causal.causal.backdoor.triggers.Trigger`, or ``None``.
        suspects: ``None``, a mapping layer name → unit indices, or layer names to search.
        weight: the term's weight in ``CausalRepairModule`` (constant or callable of the epoch).
        unlearn_weight: ``α``, the weight of unlearning ``U``.
        path_weight: ``β``, the weight of the causal-path penalty ``P``.
        distill_weight: ``γ``, the weight of the consistency term ``K`` (0: no reference copy).
        path: ``"auto"`` (units if suspects, else logit), ``"units"``, ``"logit"`` or ``"none"``.
        binarize: mask threshold of :func:`binarized` for reverse-engineered triggers (``None``: off).
        box_fill: :func:`binarized`'s ``box_fill`` (``None``: never complete the bounding box).
        dilate: pixels by which reverse-engineered image triggers are also grown (0: off).
        complete: ``None`` (off) or pixels: each flagged class's trigger is also reversed again
            to a 0.99 attack rate with its mask confined to the detected trigger's support grown
            by this many pixels (:func:`~lightning_causal.causal.backdoor.reverse.reverse_trigger`),
            and suppressed too. Detection reverses to a low rate, which finds the part of a
            planted stamp the model learned best; the completion finds the rest of it nearby.
        adversarial_region: ``None`` (off) or pixels by which each flagged trigger's support is
            grown into the region searched at every step (``trigger=None``, image inputs).
        adversarial_steps: signed-gradient steps of the search, each a quarter of the inputs'
            range (4 reach either end of it from anywhere).
        reverse_options: keyword arguments of ``neural_cleanse`` for ``trigger=None``.
        name: tag in logs (default ``"backdoor_suppression"``).
        augment: ``"auto"`` (mixup, plus 1-pixel shifts for images), ``None`` / ``"none"``, or
            names from ``"mixup"``, ``"shift"``, ``"patch"`` joined by ``+``. ``"patch"`` (images;
            opt-in): copies with a small random stamp, held to ``f_0``'s prediction on the
            unstamped row, which trains away responses to stamps that detection did not flag
            (``"mixup+shift+patch"``; measured on development cases only, see docs/methods.md).
        balance: unlearning counts the target class's rows as a group of their own.
        when_unflagged: ``"skip"`` or ``"top"`` (``trigger=None`` and no class flagged). Where every class is
            left out of the comparison (``detection.left_out``: predicted for every input, or ruled out
            with ``-inf``), nothing is suppressed either way, with a warning.
        contrast: ``None`` (default: on where it can run, below), ``True`` (on; refused where it
            cannot run) or ``False`` (off). With ``trigger=None``, also reverse triggers on the
            contrast between the model and a feature-shifted copy of it
            (:func:`~lightning_causal.causal.backdoor.feature_shift.feature_shifted`, trained on the
            training inputs with the model's own predictions as labels) and flag the classes whose
            contrast score is at most ``contrast_options["max_ratio"]``
            (:data:`~lightning_causal.causal.backdoor.feature_shift.MAX_CONTRAST_RATIO`) too: a trigger
            moves the model and not the shifted copy, a class's natural feature moves both. A class
            flagged on the contrast only is suppressed with the contrast's trigger completed on the
            model within :data:`~lightning_causal.repair.backdoor_setup.CONTRAST_COMPLETION` pixels
            of it (reversed again to a 0.99 attack rate there), without a region search: the
            contrast's trigger is a few pixels of the planted stamp, and a search around them, where
            they lie on the class's own strokes, teaches the repair to ignore the strokes. It finds
            weakly learned backdoors that plain Neural Cleanse misses: on the protocol's test set
            it halved the mean attack rate left by ``trigger=None`` repairs (6.6% to 3.6%) with the
            same accuracy counts (``benchmarks/RESULTS.md``), at about three times the set-up cost.
            It runs on models called as ``model(x)`` returning logits (no ``output``, no
            ``additional_forward_args``) whose output layer is an ``nn.Linear`` with one output per
            class, on image inputs ``[N, C, H, W]`` (the bound was chosen on images only); with
            ``None`` it is skipped elsewhere. A training input on which the model and its copy rule out
            (``-inf``) every class between them (disjoint top-k sets), or all but one (a top-1 gate), has no
            two classes to compare and is left out of its search, with a warning; where every one is, the
            contrast is skipped with that warning (``None``) or refused (``True``).
        contrast_options: ``epochs``, ``alpha``, ``lr``, ``batch_size`` of ``feature_shifted`` and
            ``max_ratio``, the contrast's flag bound.
        seed: seed of the private generator of the augmentations.
        output: which tensor of the model's return value holds the logits (see
            :class:`~lightning_causal.causal.engine.forward.Forward`).
        additional_forward_args: further arguments of every model call (Captum's convention).
        unit_dim: the dimension of each suspect layer's output that indexes its units (one value,
            or a mapping layer -> value; default 1, ``-1`` for the neurons of a ``[N, T, D]``
            hidden state), as in :func:`~lightning_causal.causal.backdoor.suspects.suspect_units`.
        num_heads: split the unit dimension into this many heads (one value or a mapping).

    Raises:
        ValueError: bad arguments; ``path="units"`` without suspects; ``loss`` without labels.

    Examples:
        >>> t = Trigger(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 3.0]), target=1)
        >>> term = BackdoorSuppressionTerm(t)
        >>> x, y = torch.tensor([[1.0, 0.0], [2.0, 0.0]]), torch.tensor([0, 0])
        >>> model = nn.Linear(2, 2)
        >>> term.setup(model)
        >>> bool(term.loss(model, x, y) > 0), sorted(term.last_parts)
        (True, ['distill', 'path', 'unlearn'])
    """

    def __init__(
        self,
        trigger: Trigger | None = None,
        suspects: Mapping[str, Sequence[int]] | Sequence[str] | None = None,
        weight: float | Callable[[int], float] = 1.0,
        *,
        unlearn_weight: float = 0.1,
        path_weight: float = 3.0,
        distill_weight: float = 3.0,
        path: SuppressionPath = "auto",
        binarize: float | None = 0.25,
        box_fill: float | None = 0.5,
        dilate: int = 0,
        reverse_options: Mapping[str, Any] | None = None,
        complete: int | None = None,
        adversarial_region: int | None = 1,
        adversarial_steps: int = 5,
        name: str | None = None,
        augment: str | None = "auto",
        balance: bool = True,
        when_unflagged: WhenUnflagged = "skip",
        contrast: bool | None = None,
        contrast_options: Mapping[str, Any] | None = None,
        seed: int = 0,
        output: OutputSpec = None,
        additional_forward_args: Any = None,
        unit_dim: int | Mapping[str, int] | None = None,
        num_heads: int | Mapping[str, int] | None = None,
    ) -> None:
        super().__init__(weight, name)
        check_type("trigger", trigger, Trigger, none_ok=True)
        for key, value in (("unlearn_weight", unlearn_weight), ("path_weight", path_weight), ("distill_weight", distill_weight)):
            check_float(key, value, minimum=0.0)
        check_choice("path", path, _PATHS)
        check_choice("when_unflagged", when_unflagged, _UNFLAGGED)
        self.suspects = _check_suspects(suspects)
        if path == "units" and self.suspects is None:
            raise ValueError("Expected argument `suspects` (layer -> units, or layer names) with path='units' but got None")
        layers = list(self.suspects or [])
        self.unit_dims, self.head_counts = per_layer_layouts(unit_dim, num_heads, layers)
        check_type("reverse_options", reverse_options, Mapping, none_ok=True)
        check_int("dilate", dilate, minimum=0)
        check_seed(seed)
        self.complete = check_int("complete", complete, minimum=0, none_ok=True)
        self.adversarial_region = check_int("adversarial_region", adversarial_region, minimum=0, none_ok=True)
        self.adversarial_steps = check_int("adversarial_steps", adversarial_steps, minimum=1)
        self.regions: list[Tensor] = []  # per flagged trigger: its support grown by `adversarial_region`, [1, H, W]
        self._range: tuple[float, float] = (0.0, 1.0)
        if binarize is not None:
            _check_share(binarize, "binarize", allow_one=False, allow_none=True)
        if box_fill is not None:
            _check_share(box_fill, "box_fill", allow_one=True, allow_none=True)
        if augment not in (None, "none", "auto"):
            resolve_augment(augment, torch.zeros(1, 1, 1, 1))  # validates the names
        self.dilate, self.binarize, self.box_fill = dilate, binarize, box_fill
        self.augment, self.balance, self.when_unflagged, self.seed = augment, bool(balance), when_unflagged, seed
        self.output, self.additional_forward_args = check_output_spec(output), additional_forward_args
        self.trigger = trigger
        self.triggers: list[Trigger] = [trigger] if trigger is not None else []
        self.unlearn_weight, self.path_weight, self.distill_weight = float(unlearn_weight), float(path_weight), float(distill_weight)
        self.path = ("units" if self.suspects is not None else "logit") if path == "auto" else path
        self.reverse_options = check_reverse_options(reverse_options)
        check_type("contrast", contrast, bool, none_ok=True)
        self.contrast, self.contrast_options = contrast, _check_contrast_options(contrast_options)
        if self.contrast is True and (trigger is not None or self.output is not None or additional_forward_args is not None):
            raise ValueError("Expected `contrast=True` with trigger=None and a model called as model(x) returning logits "
                             "(no `output`, no `additional_forward_args`) but got "
                             + ("a trigger" if trigger is not None else "`output` or `additional_forward_args`"))
        self.contrast_detection: ReversedTriggers | None = None
        self.detection: ReversedTriggers | None = None
        self.reference: nn.Module | None = None
        self.last_parts: dict[str, float] = StepParts()
        self._generator: torch.Generator | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickled and copied without the built :class:`Forward` objects, the models' label tasks and the suspect
        layers seen to run in eval mode (weak references; rebuilt on use), the random generator as its state (torch before 2.4 pickles no ``torch.Generator``)."""
        state = super().__getstate__()
        state.pop("_forwards", None)
        state.pop("_runs_in_eval", None)
        state.pop("_skipped_steps", None)
        state.pop("_draws", None)
        state.pop("_written", None)
        if state.get("_generator") is not None:
            state["_generator"] = state["_generator"].get_state()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        generator = state.get("_generator")
        if isinstance(generator, Tensor):  # a state saved by __getstate__
            state = {**state, "_generator": torch.Generator().set_state(generator)}
        self.__dict__.update(state)

    def __copy__(self) -> BackdoorSuppressionTerm:
        """A copy (``copy.copy``) that keeps what the term learnt of the model it shares with it: the suspect layers
        seen to run in eval mode and the training steps that skipped them (copied), so that the copy, fine-tuning the
        same network, neither warns again of a layer the original warned of nor counts its steps from 0."""
        new = type(self).__new__(type(self))
        new.__setstate__(self.__getstate__())
        self._records_to(new, {})
        return new

    def __deepcopy__(self, memo: dict[int, Any]) -> BackdoorSuppressionTerm:
        """A deep copy whose records (:meth:`__copy__`) follow their model: kept for a model copied before the term in
        the same ``copy.deepcopy`` (a ``CausalRepairModule`` copies its network first: EMA, SWA), or not copied."""
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        new.__setstate__(copy.deepcopy(self.__getstate__(), memo))
        self._records_to(new, memo)
        return new

    def _records_to(self, new: BackdoorSuppressionTerm, memo: dict[int, Any]) -> None:
        """Copy the per-model records into ``new``, each under the model's copy in ``memo`` where it has one."""
        for key in ("_runs_in_eval", "_skipped_steps"):
            held = self.__dict__.get(key)
            if held:
                new.__dict__[key] = weakref.WeakKeyDictionary(
                    {memo.get(id(m), m): copy.copy(record) for m, record in held.items()})

    def _forward(self, model: nn.Module) -> Forward:
        """The :class:`Forward` of ``model`` (the model in training, or the frozen reference), built once
        per model: building one walks every module (meta and quantized checks), 0.9 ms on a 12-layer
        BERT, and a step calls this 3-4 times. It holds the model by a weak reference (:class:`_HeldWeakly`): kept
        under the model's weak key, a strong one would keep alive a model the term outlives."""
        forwards = self.__dict__.setdefault("_forwards", weakref.WeakKeyDictionary())
        if model not in forwards:
            forwards[model] = _HeldWeakly(model, output=self.output, additional_forward_args=self.additional_forward_args)
        return forwards[model]

    @property
    def needs_train_inputs(self) -> bool:
        """``setup`` reads training inputs with ``trigger=None`` or suspect layer names only."""
        return self.trigger is None or isinstance(self.suspects, list)

    @property
    def makes_own_rows(self) -> bool:
        """``True``: the stamped and augmented copies are rows of their own, which other inputs and per-sample forward
        arguments of the batch cannot follow."""
        return True

    def stamp(self, x: Tensor) -> Tensor:
        """Triggered copies of ``x`` (no gradient); row ``i`` gets trigger ``i mod K``.

        Args:
            x: the batch's inputs ``[N, ...]``.
        """
        if not self.triggers:
            raise ValueError("BackdoorSuppressionTerm has no trigger: pass `trigger=`, or call `setup(model, train_inputs)` "
                             "(with trigger=None, no class may have been flagged)")
        with torch.no_grad():
            if len(self.triggers) == 1:
                return self.triggers[0].apply(x.detach())
            rows = torch.arange(x.shape[0], device=x.device) % len(self.triggers)
            stamped = torch.stack([t.apply(x.detach()) for t in self.triggers])
            return stamped[rows, torch.arange(x.shape[0], device=x.device)]

    def loss(self, model: nn.Module, x: Tensor, y: Tensor | None, *, additional_forward_args: Any = None) -> Tensor:
        """``β · P + α · unlearning + γ · consistency`` on the batch and its augmented copies;
        the parts (unweighted) are kept in ``last_parts``, a mapping ``"unlearn"``, ``"path"``, ``"distill"`` → float
        (:class:`~lightning_causal.repair.backdoor_parts.StepParts`: each read from the device when asked for, so that
        the step itself waits for none of them; ``last_parts.tensors`` gives them unread). Forward arguments of the batch (``unpack_batch``'s third
        part) are refused: the stamped and augmented copies are rows of their own, which a per-sample
        argument (the table beside an image) would have to follow; arguments shared by every call go
        to the constructor's ``additional_forward_args``.

        Args:
            model: the network being fine-tuned.
            x: the batch's inputs ``[N, ...]`` (one tensor).
            y: the batch's true class labels ``[N]`` (required), integer class indices (any integer dtype or bool;
                float labels are refused, convert them with ``.long()``); soft labels ``[N, C]`` (mixup, CutMix, label
                smoothing: rows of non-negative values summing to 1) are read as each row's largest class
                (:func:`~lightning_causal.audits.label_task.class_indices`), the class unlearning keeps, unless the
                task the term reads labels by says multi-label or regression (:meth:`task_of`: the one a
                ``CausalRepairModule`` handed over, else what ``model`` says, read once per model). Where it says
                nothing, the rows are read as classes with a warning that names how to say the task, once per term
                (the rows are still checked at every step).
            additional_forward_args: must be ``None``, as above.
        """
        if additional_forward_args is not None:
            raise ValueError(BATCH_ARGUMENTS_REFUSED)
        if not isinstance(x, Tensor):
            raise ValueError(f"BackdoorSuppressionTerm stamps one input tensor but the batch holds {type(x).__name__} inputs")
        if y is None:
            raise ValueError("BackdoorSuppressionTerm needs the true labels `y` of the batch (unlearning keeps them on triggered copies)")
        task = None
        if isinstance(y, Tensor) and y.is_floating_point() and y.dim() == 2:  # soft labels [N, C] (mixup, CutMix, label
            task = self.task_of(model)  # smoothing): each row's largest class, unless the model says otherwise
            guessed = task is None and self.__dict__.get("_soft_labels_guessed", False)
            rows, y = y, class_indices(y, task="multiclass" if guessed else task)  # the guess warned of once per term:
            if task is None and y is not rows:  # the rows still checked at every step, without the one-hot read and
                self._soft_labels_guessed = True  # the warning's call (its frame walk) a step
        if not isinstance(y, Tensor) or y.dim() != 1 or y.shape[0] != x.shape[0]:
            soft = (f"; these rows are soft labels but the model says it is {task}, so they are not read as classes: for a "
                    "single-label classifier pass `unpack_batch=lambda b: (b[0], b[1].argmax(1), None)`"
                    if task in ("multilabel", "regression") and class_distributions(y, task="multiclass") else
                    " (soft labels [N, C], rows of non-negative values summing to 1, are read by their largest class)")
            raise ValueError(
                f"BackdoorSuppressionTerm needs one class index per sample of the batch, y [{x.shape[0]}], but got "
                f"{list(getattr(y, 'shape', [])) or type(y).__name__} (multi-hot labels of a multi-label classifier, "
                "per-position labels?): its unlearning is a cross-entropy towards each sample's true class and a trigger "
                f"targets one class; pass `unpack_batch=` giving class indices [N]{soft}")
        if not self.triggers and self.detection is None:
            raise ValueError("BackdoorSuppressionTerm has no trigger yet: pass `trigger=` or call `setup(model, train_inputs)`")
        n = x.shape[0]
        xs, src_a, src_b, invariant = self._rows(x)
        m = xs.shape[0]
        suppress = bool(self.triggers) and (self.unlearn_weight > 0 or self.path in ("units", "logit") and self.path_weight > 0)
        if not suppress and self.distill_weight == 0:
            # a float zero also for integer inputs (uint8 images): only floating tensors can require grad
            zero = x.new_zeros((), dtype=x.dtype if x.is_floating_point() else torch.get_default_dtype())
            self.last_parts = StepParts({"unlearn": zero, "path": zero, "distill": zero})
            return zero.clone().requires_grad_()
        layers = list(self.suspects) if suppress and self.path == "units" and self.path_weight > 0 else []
        for layer in layers:
            check_site(model, layer)
        out, shifts, pairs = self._term_pass(model, xs, suppress, layers)
        if shifts is not None:
            shifts.skipped = self._skipped(model, xs[:1], shifts.calls)
        zero = out.new_zeros(())
        unlearn = path = distill = zero
        if suppress:
            bad = sorted({t.target for t in self.triggers if t.target >= out.shape[1]})
            if bad:  # else an index error deep in the unlearning loss
                raise ValueError(f"Expected the trigger's `target` in [0, {out.shape[1] - 1}] for a model of {out.shape[1]} "
                                 f"classes but got {bad[0]}")
            y = self._class_labels(y)  # int32 / uint8 / bool labels cast, float ones refused (torch's error before)
            idx = self._targets(m, x.device)
            keep = self._keep(y, src_a, src_b, idx)
            unlearn = self._unlearn(out[m : m + n], y, idx[:n])
            if self.path in ("units", "logit") and self.path_weight > 0:
                path = self._path(out[:m], out[m:], shifts, keep, idx, n)
        if suppress and self.regions:
            idx_r = self._targets(m, x.device, len(self.regions))
            keep_r = self._keep(y, src_a, src_b, idx_r)
            rows_a = self.adversarial_rows(model, xs, idx_r.squeeze(1))
            run_a = lambda: _at_least_float32(self._forward(model)(rows_a))  # noqa: E731
            # paired with the clean rows as the stamped rows are: a pass of its own replaying the clean pass's draws
            out_a = pairs.replay(run_a) if pairs is not None else run_a()
            unlearn = 0.5 * (unlearn + self._unlearn(out_a[:n], y, idx_r[:n]))
            if self.path == "logit" and self.path_weight > 0:  # the unit path has no activations of these rows
                path = 0.5 * (path + self._path(out[:m], out_a, None, keep_r, idx_r, n))
        if self.distill_weight > 0:
            distill = self._consistency(out[:m], xs, src_a, src_b, n, invariant)
        self.last_parts = StepParts({"unlearn": unlearn, "path": path, "distill": distill})  # read when asked for
        return self.unlearn_weight * unlearn + self.path_weight * path + self.distill_weight * distill

    def _term_pass(self, model: nn.Module, xs: Tensor, suppress: bool, layers: list[str],
                   ) -> tuple[Tensor, _CallShifts | None, PairedPasses | None]:
        """The model's logits on the clean rows ``xs`` and, where ``suppress``, on their stamped copies after them
        (``[2m, C]``), with the suspect ``layers``' shifts (:class:`_CallShifts`) and, where the stamped rows ran as a
        pass of their own, the :class:`~lightning_causal.repair.paired_rows.PairedPasses` that paired them (``None``
        where they ran in one pass with the clean rows).

        One pass of both halves pairs row ``i`` with row ``m + i`` exactly where the pass draws no random numbers. Where
        it draws them (dropout, DropPath, stochastic depth, LayerDrop in training mode), the twins would get masks of
        their own: the clean rows then run first and the stamped rows as a second pass from the same random state, the
        first's BatchNorm statistics normalising it (:class:`~lightning_causal.repair.paired_rows.PairedPasses`).
        Whether the pass draws (read from the states of the global generators and of those its modules hold) is read
        again at every step, from the pass the step runs first: a model that drew at its last step runs its clean
        rows first, and where they draw nothing now (its dropout set to 0, eval mode) that pass is undone and one pass
        of both halves run; any other step runs one pass, undone and run again as two where it drew. Every step thus
        computes what it would with a new term (a copy, one loaded from a checkpoint): the answer is the model's now,
        not its past. A pass undone, and the clean pass before the stamped pass replays it, leave the model's buffers
        as they found them (:meth:`~lightning_causal.repair.paired_rows.PairedPasses.undo`, ``replay``): a step
        advances spectral norm's power iteration once, as one pass does.
        """
        forward = self._forward(model)
        if not suppress:
            return _at_least_float32(self.checked_logits(forward(xs))), None, None
        m, stamped = xs.shape[0], self.stamp(xs)
        draws, written = pass_records(self)
        pairs = PairedPasses(model, xs.device, written)
        run = lambda rows: lambda: _at_least_float32(self.checked_logits(forward(rows)))  # noqa: E731
        held = contextlib.ExitStack()  # the capture of the pass running now: the clean pass's held up to the replay
        shifts: _CallShifts | None = None

        def passes(rows: int, split: bool = False) -> None:
            # every call of a suspect layer (a backbone run on each view of a test-time-augmentation wrapper, a cell
            # unrolled over time): the units are held at each call, as BackdoorAudit and unit_effects set them at each;
            # each call reduced to its shift as it runs (its output not kept), refused after the pass in the term's words
            nonlocal shifts
            held.close()
            shifts = _CallShifts(model, self.suspects, self.unit_dims, self.head_counts, rows, split=split) if layers else None
            held.enter_context(self._captured(model, layers, shifts))

        def joint() -> tuple[Tensor, _CallShifts | None, None]:
            passes(2 * m)
            out = pairs.first(run(torch.cat([xs, stamped])), norms=False)
            held.close()
            return out, shifts, None

        def clean() -> Tensor:
            passes(m, split=True)
            return pairs.first(run(xs))

        def replayed(out_c: Tensor) -> tuple[Tensor, _CallShifts | None, PairedPasses]:
            if shifts is not None:
                shifts.stamped_pass = True
            out_t = pairs.replay(run(stamped))
            held.close()
            return torch.cat([out_c, out_t]), shifts, pairs

        def warn() -> None:
            warnings.warn(_CHECKPOINTED.format(then=_CHECKPOINTED_ONE_PASS), UserWarning, stacklevel=outside_package())

        with held:
            return pairs.paired(draws, joint, clean, replayed, warn=warn, rows=m,
                                refused=ValueError(_CHECKPOINTED.format(then=_CHECKPOINTED_LATER)))

    @staticmethod
    def _captured(model: nn.Module, layers: list[str], shifts: _CallShifts | None) -> contextlib.AbstractContextManager:
        """The suspect layers' outputs handed to ``shifts`` as each call runs (nothing where no layer is held)."""
        if not layers:
            return contextlib.nullcontext({})
        return capture(model, layers, detach=False, keep=shifts, warn_repeats=False, warn_unreached=False)

    def _skipped(self, model: nn.Module, x: Tensor, calls: Mapping[str, int]) -> set[str]:
        """The suspect layers that did not run in this step's pass of ``model`` (no ``calls``) that the model skips at
        random in training (LayerDrop, stochastic depth skipping the call): those that run in eval mode, checked on a
        row ``x`` once per layer (the model's modes, buffers and random streams restored). They have no units in this
        step's network, so that its penalty leaves them out, as dropout leaves out a unit; a layer that does not run in
        eval mode either is refused (:meth:`~SuppressionParts._path`). One left out of each of the first
        ``_SKIPPED_STEPS`` training steps the term saw of the model, and run in none, is warned of once (a layer the
        model runs in eval mode only, a branch on ``self.training``, would have no penalty at any step, in silence)."""
        if not model.training:
            return set()
        # layer -> the training steps that skipped it before it first ran (None once it ran: skipped at random)
        steps = self.__dict__.setdefault("_skipped_steps", weakref.WeakKeyDictionary()).setdefault(model, {})
        unrun = [k for k, c in calls.items() if not c]
        for k in calls.keys() - unrun:
            steps[k] = None
        if not unrun:
            return set()
        known = self.__dict__.setdefault("_runs_in_eval", weakref.WeakKeyDictionary()).setdefault(model, set())
        unseen = [k for k in unrun if k not in known]
        if unseen:
            with audit_mode(model), capture(model, unseen, keep=lambda k, h: known.add(k) or h.new_zeros(()),
                                            warn_repeats=False, warn_unreached=False):
                self._forward(model)(x)
        skipped = [k for k in unrun if k in known]
        for k in skipped:
            if steps.get(k, 0) is not None:
                steps[k] = steps.get(k, 0) + 1
                if steps[k] == _SKIPPED_STEPS:
                    warnings.warn(_NEVER_RUN_IN_TRAINING.format(layer=k, steps=_SKIPPED_STEPS), UserWarning,
                                  stacklevel=outside_package())
        return set(skipped)

    def adversarial_rows(self, model: nn.Module, x: Tensor, targets: Tensor) -> Tensor:
        """Copies of ``x`` whose flagged region (row ``i``: region ``i mod K``) is searched for the
        stamp that raises ``log p_targets`` most (:func:`search_regions`: eval mode, parameters
        frozen; every other pixel is the row's own).

        Args:
            model: the network being fine-tuned.
            x: the batch's inputs ``[N, ...]``.
            targets: ``[N]`` the class whose log-probability each row's search raises.
        """
        if not self.regions:
            raise ValueError("BackdoorSuppressionTerm has no region to search: it needs `setup` with trigger=None on image inputs "
                             "and `adversarial_region` not None")
        if self._generator is None:
            self._generator = torch.Generator().manual_seed(self.seed)
        return search_regions(self._forward(model), x, self.regions, targets, self._range, self.adversarial_steps, self._generator)

    def __repr__(self) -> str:
        return (f"BackdoorSuppressionTerm(triggers={self.triggers!r}, path={self.path!r}, unlearn_weight={self.unlearn_weight}, "
                f"path_weight={self.path_weight}, distill_weight={self.distill_weight}, augment={self.augment!r}, weight={self.weight!r})")
