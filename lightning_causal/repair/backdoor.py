"""BackdoorSuppressionTerm: unlearn a backdoor while fine-tuning on a little clean data."""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from lightning_causal.causal.backdoor.neural_cleanse import ReversedTriggers, neural_cleanse
from lightning_causal.causal.backdoor.suspects import suspect_units
from lightning_causal.causal.backdoor.triggers import Trigger
from lightning_causal.causal.engine.interventions import capture, resolve_module
from lightning_causal.causal.engine.state import audit_mode
from lightning_causal.repair.base import RepairTerm

__all__ = ["BackdoorSuppressionTerm", "binarized", "dilated"]

_PATHS = ("auto", "units", "logit", "none")


def _mean_colour(mask: Tensor, pattern: Tensor) -> tuple[Tensor, Tensor]:
    """The mask broadcast to the pattern's shape and the mask-weighted mean colour of the pattern
    per channel ``[C, 1, 1]``."""
    m = mask.expand(torch.broadcast_shapes(mask.shape, pattern.shape))
    return m, (m * pattern).sum((-1, -2), keepdim=True) / m.sum((-1, -2), keepdim=True).clamp_min(1e-12)


def dilated(trigger: Trigger, pixels: int = 1) -> Trigger:
    """The trigger's mask binarised at 0.5 and grown by ``pixels`` in every direction (images
    ``[C, H, W]``), stamped with the mask-weighted mean colour of its pattern.

    A reverse-engineered trigger is the *smallest* stamp that flips the model; the planted one
    is usually a little larger, and unlearning only the minimal stamp can leave the rest of it
    working. Unlearning the grown stamp as well covers the neighbourhood.

    Examples:
        >>> t = Trigger(torch.tensor([[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.9]]]), torch.ones(1, 3, 3), 0)
        >>> dilated(t).mask[0]
        tensor([[0., 0., 0.],
                [0., 1., 1.],
                [0., 1., 1.]])
    """
    if trigger.mask.dim() != 3:
        raise ValueError(f"Expected an image trigger with a mask [C, H, W] to dilate but got {list(trigger.mask.shape)}")
    hard = (trigger.mask > 0.5).float()
    if not hard.any():
        return trigger
    grown = F.max_pool2d(hard.unsqueeze(0), 2 * pixels + 1, stride=1, padding=pixels)[0]
    m, colour = _mean_colour(trigger.mask, trigger.pattern)
    return Trigger(grown, colour.expand(m.shape).clone(), trigger.target)


def _check_share(value: object, name: str, allow_one: bool, allow_none: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is a number in (0, 1) (or (0, 1] with ``allow_one``)."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not (0 < value < 1 or (allow_one and value == 1)):
        allowed = ("None or " if allow_none else "") + ("a number in (0, 1]" if allow_one else "a number in (0, 1)")
        raise ValueError(f"Expected argument `{name}` to be {allowed} but got {value!r}")


def binarized(trigger: Trigger, threshold: float = 0.25, box_fill: float | None = 0.5) -> Trigger:
    """The trigger stamped at full strength on its support: mask ``1[m > threshold]``, the same
    pattern; for an image trigger (mask ``[C, H, W]``) whose support covers at least ``box_fill``
    of its bounding box, the whole box (a patch with holes is completed; the new pixels take
    the mask-weighted mean colour of the pattern).

    A reverse-engineered mask is soft (``m = (tanh θ + 1)/2``) and minimal: Neural Cleanse blends
    the pattern only as much as the model needs, so a pixel of the planted patch can come out at
    ``m ≈ 0.3``, or not at all when three of a 2x2 patch's four pixels suffice. A planted BadNets
    patch is a full-strength rectangle; the completed stamp reproduces it, and unlearning it
    removes what the minimal stamp leaves working. A scattered support (less than ``box_fill``
    of its box) is not completed; if no mask value exceeds ``threshold`` the trigger is returned
    unchanged.

    Raises:
        ValueError: ``threshold`` not in (0, 1), ``box_fill`` not None or in (0, 1].

    Examples:
        >>> t = Trigger(torch.tensor([0.0, 0.3, 0.9]), torch.tensor([5.0, 6.0, 7.0]), 1)
        >>> binarized(t).mask, binarized(t).pattern
        (tensor([0., 1., 1.]), tensor([5., 6., 7.]))
        >>> corner = Trigger(torch.tensor([[[0.0, 0.0, 0.0], [0.0, 0.9, 0.8], [0.0, 0.6, 0.1]]]), torch.ones(1, 3, 3), 0)
        >>> binarized(corner).mask[0]
        tensor([[0., 0., 0.],
                [0., 1., 1.],
                [0., 1., 1.]])
    """
    _check_share(threshold, "threshold", allow_one=False)
    if box_fill is not None:
        _check_share(box_fill, "box_fill", allow_one=True, allow_none=True)
    hard = (trigger.mask > threshold).to(trigger.mask.dtype)
    if not hard.any():
        return trigger
    if box_fill is None or hard.dim() != 3:
        return Trigger(hard, trigger.pattern, trigger.target)
    support = hard.amax(0)
    rows, cols = support.any(1).nonzero().flatten(), support.any(0).nonzero().flatten()
    box = torch.zeros_like(hard)
    box[:, int(rows.min()) : int(rows.max()) + 1, int(cols.min()) : int(cols.max()) + 1] = 1
    if float(hard.sum()) < box_fill * float(box.sum()) or torch.equal(box, hard):
        return Trigger(hard, trigger.pattern, trigger.target)
    m, colour = _mean_colour(hard, trigger.pattern)
    return Trigger(box, torch.where(m > 0, trigger.pattern.expand(m.shape), colour), trigger.target)


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


class BackdoorSuppressionTerm(RepairTerm):
    r"""Remove a backdoor by fine-tuning: a penalty on the trigger's causal path, unlearning on
    triggered copies and a consistency term that keeps the clean predictions.

    For a batch ``(x, y)`` of *clean* data, the trigger ``T`` (target ``t``) and ``f_0``, a frozen
    copy of the model taken at :meth:`setup` (the model before repair):

    .. math::
        R = β \, \underbrace{P(x)}_{\text{causal path}}
          + α \, \underbrace{CE\big(f(T(x)),\, y\big)}_{\text{unlearning}}
          + γ \, \underbrace{KL\big(f_0(x) \,\Vert\, f(x)\big)}_{\text{consistency}}

    - **Causal path** without ``suspects`` (default): the trigger's causal effect on the target's
      probability, clipped at 0 and measured against the clean input,
      ``P = mean_i max(0, p_t(T(x_i)) − sg[p_t(x_i)])`` (``sg``: no gradient; the clean side stays
      anchored). Bounded in [0, 1], so it cannot blow up the way a log-probability effect does.
      With ``suspects`` (layer → units, e.g. from
      :func:`~lightning_causal.causal.backdoor.triggers.suspect_units`; CARE, Sun et al. 2022): the mean
      squared shift of the suspect units caused by the trigger,
      ``P = mean_{l,u} (h_u(T(x)) − sg[h_u(x)])²``.
    - **Unlearning** (Neural Cleanse's mitigation, Wang et al. 2019; BackdoorBench's fine-tuning
      baseline): triggered copies keep their *true* labels. Its cross-entropy is large at the
      start (the model is confidently wrong on them), so its default weight is small (0.1).
    - **Consistency** (knowledge distillation, Hinton et al. 2015, with the model before repair as
      the teacher; NAD, Li et al. 2021, distils attention maps from a fine-tuned teacher instead):
      the batch-mean KL divergence of the repaired model's clean predictions from ``f_0``'s
      (``f_0`` in eval mode, no gradient).
      A few clean images pull a fine-tuned model away from what it knew; this term holds the
      clean behaviour while the path penalty changes the triggered one, so a strong path weight
      no longer costs accuracy. It keeps one copy of the model (its memory) for the repair.

    With ``trigger=None``, :meth:`setup` reverse-engineers it from the training inputs
    (:func:`~lightning_causal.causal.backdoor.neural_cleanse.neural_cleanse`) and uses every flagged class's
    trigger, :func:`binarized` at ``binarize`` (the soft reversed mask made a full-strength stamp;
    ``None``: the soft trigger as reversed), plus, with ``dilate > 0`` and image triggers, the
    :func:`dilated` copies (batch rows take the triggers in turn); if no class is flagged it warns
    and uses the most anomalous one. ``suspects`` given as layer names are found at setup by
    ``suspect_units`` (the flagged units, else the top one). Cost: one forward of ``2N`` rows per
    batch (``N`` with ``path="none"`` and ``distill_weight=0``) plus ``N`` rows of ``f_0``.

    Measured defaults (``benchmarks/bench_backdoor.py``, ``benchmarks/RESULTS.md``; digits CNN,
    BadNets 2x2 patch, ``CausalRepairModule`` Adam 1e-3, batch 32, **20 epochs** on 10% of the
    clean training data). Poisoned-model seeds 0–4 (used to choose the defaults): known trigger
    ASR 0.0–0.9% at −0.6 to +0.6 accuracy points, ``trigger=None`` ASR 0.0–1.2% at −0.6 to −0.3
    (target ASR ≤ 2% and a drop ≤ 1 point: 5/5 each). Held-out seeds 5–9 and 20–39: known
    trigger ASR ≤ 1.6% on all 25, both targets on 19/25 (the misses: drops of 1.1–1.7 points;
    plain fine-tuning alone drops > 1 point on 5 of seeds 20–39); mean change −0.16 points over
    the 30 seeds measured. The demo's model (whose reversed mask holds 3 of the 4
    planted pixels): −0.6 points, ASR 0.6% (2.5% without the box completion of
    :func:`binarized`). Each part, on seeds 0–4: without the consistency term the path weight of
    10 costs up to 9.7 points (target 1/5); the old defaults (``path_weight=1``, no consistency;
    reversed: soft + dilated) met it on 3/5 (known) and 2/5 (reversed) seeds at 20 epochs; with
    10 repair epochs the defaults meet it on 1/5 and 0/5 seeds (the consistency term needs the
    longer run to recover the accuracy).

    Args:
        trigger: the known :class:`~lightning_causal.causal.backdoor.triggers.Trigger`, or ``None``.
        suspects: ``None``, a mapping layer name → unit indices, or layer names to search.
        weight: the term's weight in ``CausalRepairModule`` (constant or callable of the epoch).
        unlearn_weight: ``α``. path_weight: ``β``. distill_weight: ``γ`` (0: no reference copy).
        path: ``"auto"`` (units if suspects, else logit), ``"units"``, ``"logit"`` or ``"none"``.
        binarize: mask threshold of :func:`binarized` for reverse-engineered triggers (``None``: off).
        box_fill: :func:`binarized`'s ``box_fill`` (``None``: never complete the bounding box).
        dilate: pixels by which reverse-engineered image triggers are also grown (0: off).
        reverse_options: keyword arguments of ``neural_cleanse`` for ``trigger=None``.
        name: tag in logs (default ``"backdoor_suppression"``).

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
        unlearn_weight: float = 0.1,
        path_weight: float = 10.0,
        distill_weight: float = 3.0,
        path: str = "auto",
        binarize: float | None = 0.25,
        box_fill: float | None = 0.5,
        dilate: int = 0,
        reverse_options: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(weight, name)
        if trigger is not None and not isinstance(trigger, Trigger):
            raise TypeError(f"Expected argument `trigger` to be None or a Trigger but got {type(trigger)}")
        for key, value in (("unlearn_weight", unlearn_weight), ("path_weight", path_weight), ("distill_weight", distill_weight)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"Expected argument `{key}` to be a non-negative number but got {value!r}")
        if path not in _PATHS:
            raise ValueError(f"Expected argument `path` to be one of {_PATHS} but got {path!r}")
        self.suspects = _check_suspects(suspects)
        if path == "units" and self.suspects is None:
            raise ValueError("Expected argument `suspects` (layer -> units, or layer names) with path='units' but got None")
        if reverse_options is not None and not isinstance(reverse_options, Mapping):
            raise TypeError(f"Expected argument `reverse_options` to be None or a mapping but got {type(reverse_options)}")
        if isinstance(dilate, bool) or not isinstance(dilate, int) or dilate < 0:
            raise ValueError(f"Expected argument `dilate` to be a non-negative int but got {dilate!r}")
        if binarize is not None:
            _check_share(binarize, "binarize", allow_one=False, allow_none=True)
        if box_fill is not None:
            _check_share(box_fill, "box_fill", allow_one=True, allow_none=True)
        self.dilate, self.binarize, self.box_fill = dilate, binarize, box_fill
        self.trigger = trigger
        self.triggers: list[Trigger] = [trigger] if trigger is not None else []
        self.unlearn_weight, self.path_weight, self.distill_weight = float(unlearn_weight), float(path_weight), float(distill_weight)
        self.path = ("units" if self.suspects is not None else "logit") if path == "auto" else path
        self.reverse_options = dict(reverse_options or {})
        self.detection: ReversedTriggers | None = None
        self.reference: nn.Module | None = None
        self.last_parts: dict[str, float] = {}

    def setup(self, model: nn.Module, train_inputs: Tensor | None = None) -> None:
        """Freeze a reference copy of ``model`` (``distill_weight > 0``), reverse-engineer the
        trigger (``trigger=None``) and find suspect units (layer names)."""
        if self.distill_weight > 0:
            self.reference = copy.deepcopy(model).eval()
            for p in self.reference.parameters():
                p.requires_grad_(False)
        if self.trigger is None:
            if train_inputs is None:
                raise ValueError("BackdoorSuppressionTerm(trigger=None) needs `train_inputs` to reverse-engineer the trigger")
            self._reverse_engineer(model, train_inputs)
        if isinstance(self.suspects, list):
            if train_inputs is None:
                raise ValueError("BackdoorSuppressionTerm with suspect layer names needs `train_inputs` to find the units")
            found = {}
            for layer in self.suspects:
                su = suspect_units(model, train_inputs, self.triggers[0], layer)
                found[layer] = su.flagged or su.ranking()[:1]
            self.suspects = found

    def _reverse_engineer(self, model: nn.Module, train_inputs: Tensor) -> None:
        with audit_mode(model):
            num_classes = model(train_inputs[:1]).shape[1]
        self.detection = neural_cleanse(model, train_inputs, num_classes, **self.reverse_options)
        flagged = self.detection.flagged
        if not flagged:
            top = int(self.detection.anomaly_index.argmax())
            warnings.warn(f"BackdoorSuppressionTerm: no class flagged by Neural Cleanse; suppressing the most anomalous "
                          f"class {top} (index {float(self.detection.anomaly_index[top]):.2f})", stacklevel=3)
            flagged = [top]
        self.triggers = [self.detection.triggers[c] for c in flagged]
        if self.binarize is not None:
            self.triggers = [binarized(t, self.binarize, self.box_fill) for t in self.triggers]
        if self.dilate and self.triggers[0].mask.dim() == 3:
            self.triggers += [dilated(t, self.dilate) for t in self.triggers]

    def stamp(self, x: Tensor) -> Tensor:
        """Triggered copies of ``x`` (no gradient); row ``i`` gets trigger ``i mod K``."""
        if not self.triggers:
            raise ValueError("BackdoorSuppressionTerm has no trigger yet: pass `trigger=` or call `setup(model, train_inputs)`")
        with torch.no_grad():
            if len(self.triggers) == 1:
                return self.triggers[0].apply(x.detach())
            rows = torch.arange(x.shape[0], device=x.device) % len(self.triggers)
            stamped = torch.stack([t.apply(x.detach()) for t in self.triggers])
            return stamped[rows, torch.arange(x.shape[0], device=x.device)]

    def _targets(self, n: int, device: torch.device) -> Tensor:
        t = torch.tensor([tr.target for tr in self.triggers], device=device)
        return t[torch.arange(n, device=device) % len(self.triggers)]

    def _distill(self, out_clean: Tensor, x: Tensor) -> Tensor:
        if self.reference is None:
            raise ValueError("BackdoorSuppressionTerm with distill_weight > 0 needs `setup(model)` first (it copies the model before repair)")
        with torch.no_grad():
            ref = self.reference(x).float()
        return F.kl_div(out_clean.log_softmax(1), ref.log_softmax(1), reduction="batchmean", log_target=True)

    def loss(self, model: nn.Module, x: Tensor, y: Tensor | None) -> Tensor:
        """``β · P(x) + α · CE(f(T(x)), y) + γ · KL(f_0(x) ‖ f(x))`` on the batch; the parts are
        kept in ``last_parts``."""
        if y is None:
            raise ValueError("BackdoorSuppressionTerm needs the true labels `y` of the batch (unlearning keeps them on triggered copies)")
        x_t = self.stamp(x)
        with_path = self.path in ("units", "logit") and self.path_weight > 0
        n, with_clean = x.shape[0], with_path or self.distill_weight > 0
        layers = list(self.suspects) if self.path == "units" and with_path else []
        for layer in layers:
            resolve_module(model, layer)
        ctx = capture(model, layers, detach=False) if layers else contextlib.nullcontext({})
        with ctx as acts:
            out = model(torch.cat([x, x_t]) if with_clean else x_t)
        out = out.float()
        out_t = out[n:] if with_clean else out
        unlearn = F.cross_entropy(out_t, y)
        path = distill = out.new_zeros(())
        if with_path and layers:
            shifts = [(acts[k][n:, u] - acts[k][:n, u].detach()).float().pow(2).mean() for k, u in self.suspects.items()]  # type: ignore[union-attr]
            path = torch.stack(shifts).mean()
        elif with_path:
            prob = out.softmax(1)
            idx = self._targets(n, x.device).unsqueeze(1)
            path = (prob[n:].gather(1, idx) - prob[:n].gather(1, idx).detach()).clamp_min(0).mean()
        if self.distill_weight > 0:
            distill = self._distill(out[:n], x)
        self.last_parts = {"unlearn": float(unlearn.detach()), "path": float(path.detach()), "distill": float(distill.detach())}
        return self.unlearn_weight * unlearn + self.path_weight * path + self.distill_weight * distill

    def __repr__(self) -> str:
        return (f"BackdoorSuppressionTerm(triggers={self.triggers!r}, path={self.path!r}, unlearn_weight={self.unlearn_weight}, "
                f"path_weight={self.path_weight}, distill_weight={self.distill_weight}, weight={self.weight!r})")
