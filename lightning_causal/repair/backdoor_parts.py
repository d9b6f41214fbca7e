"""The parts of :class:`~lightning_causal.repair.backdoor.BackdoorSuppressionTerm`'s loss.

:class:`SuppressionParts` holds what :meth:`~lightning_causal.repair.backdoor.BackdoorSuppressionTerm.loss`
adds up: the rows (the clean batch and its augmented copies, with their source rows), each row's
target, the rows the path counts, the causal-path penalty (target probability or suspect units), the
unlearning cross-entropy and the consistency KL against the frozen reference. A mixin: the
attributes it reads are the term's (set by its ``__init__`` and ``setup``).
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, Mapping, Sequence, ValuesView
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from lightning_causal.causal.backdoor.triggers import Trigger
from lightning_causal.causal.engine.units import resolve_layout, to_units
from lightning_causal.repair.augment import INVARIANT, augmented_copies, resolve_augment

__all__ = ["IGNORED_LABEL", "StepParts", "SuppressionParts", "check_label_range", "scaled_shift"]


#: The label ``F.cross_entropy`` ignores (its ``ignore_index``): such a row's unlearning counts 0.
IGNORED_LABEL = -100


def check_label_range(y: Tensor, n_classes: int) -> None:
    """Refuse class labels ``y`` outside ``0..n_classes-1`` (torch's ignored label, -100, aside) with an error naming
    ``y``, the value and the classes allowed, instead of torch's "Target 3 is out of bounds." deep in the unlearning's
    cross-entropy (a device-side assert on a GPU). One read of the labels' range.

    Raises:
        ValueError: a label outside ``0..n_classes-1``; labels ``1..n_classes`` are said to look 1-based.

    Examples:
        >>> check_label_range(torch.tensor([0, 2, -100]), 3)
        >>> check_label_range(torch.tensor([1, 2, 3]), 3)
        Traceback (most recent call last):
        ...
        ValueError: Expected argument `y` to hold class indices in [0, 2] for a model of 3 classes (BackdoorSuppressionTerm's unlearning, a cross-entropy towards each sample's true class) but got 3 (labels 1..3: 1-based? shift them with `y - 1`, in a CausalRepairModule through `unpack_batch=lambda b: (b[0], b[1] - 1, None)`)
    """
    if y.numel() == 0:
        return
    kept = y.masked_fill(y == IGNORED_LABEL, 0)  # 0: a class of any model, so that one read gives the range
    low, high = torch.stack([kept.min(), kept.max()]).tolist()
    if 0 <= low and high < n_classes:
        return
    bad = low if low < 0 else high
    hint = (": 1-based? shift them with `y - 1`, in a CausalRepairModule through "
            "`unpack_batch=lambda b: (b[0], b[1] - 1, None)`" if low >= 1 and high == n_classes else "")
    raise ValueError(
        f"Expected argument `y` to hold class indices in [0, {n_classes - 1}] for a model of {n_classes} classes "
        "(BackdoorSuppressionTerm's unlearning, a cross-entropy towards each sample's true class) but got "
        f"{bad} (labels {low}..{high}{hint})")


# a call of a suspect layer on other rows than the term's clean+stamped pass: no stamped row to pair with its clean one
_OTHER_ROWS = (
    "Expected every call of suspect layer {layer!r} to return the rows of the term's pass, the clean and the stamped "
    "rows ({want}), so that the causal-path penalty pairs each stamped row with its clean one at each call, but it runs "
    "{calls} per forward pass and its call {call} returned {rows} rows (a block repeated on the rows not yet "
    "halted, a module called on some of the rows or on rows flattened into the batch): name a site that sees every "
    "row once per call, an `nn.Identity` where the rows are put back together, or pass path='logit' (the trigger's "
    "effect on the output)")

# a suspect layer whose output is sequence-first ([T, N, ...]): its first axis is no rows, so pairing it would pair time steps
_SEQUENCE_FIRST = (
    "Expected suspect layer {layer!r} to return the rows of the term's pass on its first axis, the clean and the stamped "
    "rows ({want}), so that the causal-path penalty pairs each stamped row with its clean one, but its output of shape "
    "{shape} is sequence-first ({why}): its first axis is the positions and its second the rows. Build the module "
    "with batch_first=True (nn.GRU, nn.LSTM, nn.RNN, nn.MultiheadAttention and nn.Transformer's layers take it), name "
    "a site whose output puts the rows first (an `nn.Identity` after the transpose back), or pass path='logit' (the "
    "trigger's effect on the output)")

# a suspect layer whose output [K * rows, rows, ...] fits both readings, no module saying batch_first=False: rows
# flattened into the batch (heads folded into the rows, as many positions as rows) or sequence-first with a multiple of
# the rows as its positions; the shape alone cannot tell them, so both are named
_ROWS_OR_SEQUENCE_FIRST = (
    "Expected suspect layer {layer!r} to return the rows of the term's pass on its first axis, the clean and the stamped "
    "rows ({want}), so that the causal-path penalty pairs each stamped row with its clean one at each call, but its "
    "output of shape {shape} holds a multiple of them on its first axis and as many on its second: either rows "
    "flattened into the batch ([rows * heads, T, d], heads folded into the rows, as many positions as rows) or a "
    "sequence-first output ([T, rows, ...], T a multiple of the rows, from a module not saying batch_first=False). "
    "Name a site that returns the rows first, once per call (an `nn.Identity` where the rows are put back together or "
    "after the transpose back), build a sequence-first module with batch_first=True, or pass path='logit' (the "
    "trigger's effect on the output)")

# the stamped rows' pass (a pass of its own where the model draws random numbers: PairedPasses) called a suspect layer
# otherwise than the clean rows' pass did: its calls cannot be paired call for call
_UNPAIRED_CALLS = (
    "Expected the stamped rows' pass to call suspect layer {layer!r} as the clean rows' pass did, call for call, so "
    "that the causal-path penalty pairs each stamped row with its clean one (the model draws random numbers in "
    "training, so the two run as passes of their own from the same random state), but its call {call} returned "
    "{shape} where the clean pass's call of that number returned {held} (the clean pass called it {clean} times): a "
    "model whose calls depend on the rows' values (an early exit, a block repeated on the rows not yet halted). Name a "
    "site the model calls alike on every input, or pass path='logit' (the trigger's effect on the output)")

# a suspect layer that did not run in the term's pass (nor, for a model in training, in eval mode): no call whose units
# the penalty could hold
_NOT_RUN = (
    "Expected suspect layer {layer!r} to run in the term's pass, whose causal-path penalty holds its units still at "
    "each of its calls, but it did not run in this forward pass{where}: a module whose weights the model uses in "
    "functional code, such as the out_proj of torch.nn.MultiheadAttention, never runs (its input, the heads, is the "
    "site '<attention>.out_proj:input'), nor does a block the model skips for some inputs (an early exit). Name a site "
    "the model runs at every step, or pass path='logit' (the trigger's effect on the output)")
_NOT_RUN_TRAINING = (", nor in eval mode (a block that LayerDrop or stochastic depth skips at random in training runs "
                     "there, and is left out of the penalty of the steps that skip it)")

# a suspect layer left out of every training step so far (it runs in eval mode only?): its penalty held nothing
_SKIPPED_STEPS = 10
_NEVER_RUN_IN_TRAINING = (
    "BackdoorSuppressionTerm: suspect layer {layer!r} did not run in any of the {steps} training steps the term has "
    "seen of the model, though it runs in eval mode: read as a layer the model skips at random in training (LayerDrop, "
    "stochastic depth), it was left out of each step's causal-path penalty, which so far held none of its units. A "
    "layer skipped at random with probability p misses the first {steps} steps p**{steps} of the time (0.001 at "
    "p=0.5); one the model runs in eval mode only (a branch on `self.training`, an exit every training batch takes "
    "before it) is never held: name a site the model runs in training, or pass path='logit' (the trigger's effect on "
    "the output)")

# a model that draws and runs a training-mode BatchNorm layer inside an activation-checkpointed segment: the stamped
# pass (PairedPasses.replay) swaps that layer's mode and statistics during the forward only, and the backward's
# recomputation runs it without them; {then}: what the term does, the way out follows
_CHECKPOINTED = (
    "BackdoorSuppressionTerm: the model draws random numbers in training (dropout, DropPath, stochastic depth) and "
    "runs a BatchNorm layer in training mode inside an activation-checkpointed segment (torch.utils.checkpoint: "
    "gradient checkpointing, a memory-efficient DenseNet), which the backward runs again without the hooks that pair "
    "the stamped rows with their clean rows as a pass of their own (the clean pass's random state and BatchNorm batch "
    "statistics): its gradient would be wrong (use_reentrant=True) or torch would raise a CheckpointError "
    "(use_reentrant=False). {then} To pair them exactly, turn checkpointing off for the repair fit, put the BatchNorm "
    "layers outside the checkpointed segments, or keep them in eval mode (running statistics frozen: `m.eval()` for "
    "each BatchNorm module after `model.train()`)")
_CHECKPOINTED_ONE_PASS = (
    "The stamped rows run as rows of one pass with the clean rows: each gets dropout masks of its own, so that the "
    "causal-path penalty also measures that noise (a trigger that changes nothing has a penalty above 0).")
_CHECKPOINTED_LATER = (
    "The model's first step in the term ran without checkpointing, so that its stamped rows run as a pass of their "
    "own: turn checkpointing on before the repair fit's first step (the rows then run as one pass, with a warning).")

# a suspect layer whose output carries no gradient while the model's output does: the causal-path penalty on its units
# would be a constant, the term's path part silently doing nothing
_NO_PATH_GRADIENT = (
    "Expected the output of suspect layer {layer!r} to carry autograd in the term's pass, as the model's output does, "
    "but it does not: the layer runs without autograd inside the forward (a torch.utils.checkpoint(..., "
    "use_reentrant=True) segment holding it, which runs its forward under torch.no_grad, or a .detach() or "
    "torch.no_grad() there), or no parameter up to it requires grad (a frozen backbone), so the causal-path penalty "
    "on its units is a constant and would change nothing, silently. Checkpoint with use_reentrant=False, "
    "unfreeze a layer up to {layer!r}, or pass path='logit' (the trigger's effect on the "
    "output)")


class StepParts(dict):
    """The parts of one step's loss by name (a term's ``last_parts``): a ``dict`` of ``float`` when read, holding the
    detached tensor the step computed, so that the step itself reads nothing back from the device (a float taken in
    the step waits for the accelerator: one synchronisation a part, every training step). Read a part, or use the
    mapping as a dict of floats (``dict(parts)``, ``json.dumps(parts)``, ``parts.items()``, ``print``, a pickle), and
    the parts are copied to the host then. :attr:`tensors` gives them unread: what
    :class:`~lightning_causal.repair.module.CausalRepairModule` logs (``repair/<name>/<part>``).

    Args:
        parts: the parts by name, tensors of one value (detached here) or numbers (held as float64 tensors).

    Examples:
        >>> import json, pickle
        >>> parts = StepParts({"unlearn": torch.tensor(0.25), "path": 0.0})
        >>> parts["unlearn"], sorted(parts), dict(parts), json.dumps(parts)
        (0.25, ['path', 'unlearn'], {'unlearn': 0.25, 'path': 0.0}, '{"unlearn": 0.25, "path": 0.0}')
        >>> parts.tensors["unlearn"], pickle.loads(pickle.dumps(parts)) == parts
        (tensor(0.2500), True)
    """

    def __init__(self, parts: Mapping[str, Tensor | float] | None = None) -> None:
        super().__init__({k: v.detach() if isinstance(v, Tensor) else torch.tensor(float(v), dtype=torch.float64)
                          for k, v in (parts or {}).items()})  # a number in float64: read back as the very float

    @property
    def tensors(self) -> dict[str, Tensor]:
        """The parts as the step computed them, detached tensors of one value (on the model's device), by name."""
        return dict(super().items())

    # a dict whose stored values are tensors: every way of reading a value goes through __getitem__ (a float);
    # __iter__ of its own makes dict(parts), {**parts} and dict.update read them by key, json.dumps calls items()
    def __getitem__(self, key: str) -> float:
        return _as_float(super().__getitem__(key))

    def __iter__(self) -> Iterator[str]:
        return super().__iter__()

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default

    def items(self) -> ItemsView[str, float]:  # type: ignore[override]
        return ItemsView(self)

    def values(self) -> ValuesView[float]:  # type: ignore[override]
        return ValuesView(self)

    def pop(self, key: str, *default: Any) -> Any:
        return _as_float(super().pop(key, *default))

    def popitem(self) -> tuple[str, float]:
        key, value = super().popitem()
        return key, _as_float(value)

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            super().__setitem__(key, default)
        return self[key]

    def copy(self) -> dict[str, float]:  # type: ignore[override]
        return dict(self.items())

    def __eq__(self, other: object) -> bool:
        return dict(self.items()) == (dict(other.items()) if isinstance(other, Mapping) else other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]

    def __or__(self, other: Any) -> dict[str, float]:  # type: ignore[override]
        return dict(self.items()) | other

    def __ror__(self, other: Any) -> dict[str, float]:  # type: ignore[override]
        return other | dict(self.items())

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled and copied as floats (read on the host), as ``last_parts`` was: no device tensor in a pickle."""
        return type(self), (dict(self.items()),)

    def __repr__(self) -> str:
        return f"StepParts({dict(self.items())!r})"


def _as_float(value: Any) -> Any:
    """A part read: a tensor's value as a ``float``, anything else (a number set by hand) as it is."""
    return float(value) if isinstance(value, Tensor) else value


def _at_least_float32(t: Tensor) -> Tensor:
    """``t`` in float32 if it is half or bfloat16 (stable under mixed precision), else as it is (a
    float64 model's term stays float64)."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


class SuppressionParts:
    """The loss parts of :class:`~lightning_causal.repair.backdoor.BackdoorSuppressionTerm` (a mixin)."""

    # the term's attributes (BackdoorSuppressionTerm.__init__ and setup) that the parts read
    triggers: list[Trigger]
    suspects: dict[str, list[int]] | list[str] | None
    reference: nn.Module | None
    path: str
    balance: bool
    _generator: torch.Generator | None

    def _targets(self, n: int, device: torch.device, k: int | None = None) -> Tensor:
        """Row ``i``'s target ``[n, 1]``: trigger ``i mod k``'s (the first ``len(regions)`` are the regions')."""
        k = k or len(self.triggers)
        targets = [tr.target for tr in self.triggers[:k]]
        if len(set(targets)) == 1:  # filled on the device: a tensor of host data would be copied there at every step
            return torch.full((n, 1), targets[0], dtype=torch.long, device=device)
        t = torch.cat([torch.full((1,), v, dtype=torch.long, device=device) for v in targets])
        return t[torch.arange(n, device=device) % k].unsqueeze(1)

    @staticmethod
    def _keep(y: Tensor, src_a: Tensor, src_b: Tensor, idx: Tensor) -> Tensor:
        """1 for rows neither of whose source labels is the row's target (the path counts them)."""
        return ((y[src_a] != idx.squeeze(1)) & (y[src_b] != idx.squeeze(1))).float()

    @staticmethod
    def _class_labels(y: Tensor) -> Tensor:
        """``y`` ``[N]`` as the ``int64`` class indices that the unlearning's cross-entropy and the rows' targets read:
        integer labels of any width (``int32`` from NumPy, ``uint8``) and ``bool`` ones cast; float labels refused,
        as BackdoorAudit and CounterfactualAudit refuse them (``F.cross_entropy`` did, in torch's words only)."""
        if y.is_floating_point() or y.is_complex():
            values = y.detach()[:4].tolist()
            whole = not y.is_complex() and bool((y == y.round()).all())
            raise ValueError(
                f"Expected argument `y` to hold integer class indices (e.g. torch.long) for BackdoorSuppressionTerm's "
                f"unlearning, a cross-entropy towards each sample's true class, but got dtype {y.dtype} (values "
                f"{values}{' ...' if y.numel() > 4 else ''}"
                f"{')' if whole else '; not whole numbers: a regression target? the term repairs a classifier)'}; convert "
                "them with `.long()`, in a CausalRepairModule through `unpack_batch=lambda b: (b[0], b[1].long(), None)`")
        return y.long()

    def _rows(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """The clean rows and their augmented copies, with each row's two source rows and whether
        the row is held to its source's prediction (:data:`~..augment.INVARIANT` kinds; ``None``:
        no row is, known on the host, so that the step asks the device nothing)."""
        if self._generator is None:
            self._generator = torch.Generator().manual_seed(self.seed)
        n = x.shape[0]
        kinds = resolve_augment(self.augment, x)
        copies, src_a, src_b = augmented_copies(x.detach(), kinds, self._generator)
        own = torch.arange(n, device=x.device)
        flags = [False] + [k in INVARIANT for k in kinds]
        invariant = torch.cat([torch.full((n,), f, dtype=torch.bool, device=x.device) for f in flags]) if any(flags) else None
        return torch.cat([x, copies]), torch.cat([own, src_a]), torch.cat([own, src_b]), invariant

    def _consistency(self, out: Tensor, xs: Tensor, src_a: Tensor, src_b: Tensor, n: int,
                     invariant: Tensor | None = None) -> Tensor:
        """Mean KL of ``f_0`` from ``f`` over the rows; augmented rows on which ``f_0``'s
        prediction is a suppressed target that neither source row had count 0. ``invariant``
        rows (stamped copies) are held to ``f_0`` on their source row, not on themselves."""
        if self.reference is None:
            raise ValueError("BackdoorSuppressionTerm with distill_weight > 0 needs `setup(model)` first (it copies the model before repair)")
        with torch.no_grad():
            ref = _at_least_float32(self._forward(self.reference)(xs)).log_softmax(1)
            if invariant is not None:
                ref = torch.where(invariant.unsqueeze(1), ref[src_a], ref)
        # a class of probability 0 under f_0 (ruled out: a -inf logit) adds 0 (0 · log 0 = 0), not 0 · (-inf − (-inf)) = NaN
        kl = (ref.exp() * (ref - out.log_softmax(1))).masked_fill(ref == float("-inf"), 0.0).sum(1)
        if self.triggers and xs.shape[0] > n:
            predicted = ref.argmax(1)
            hit = torch.zeros_like(predicted, dtype=torch.bool)
            for target in sorted({t.target for t in self.triggers}):  # compared on the device: no host tensor copied
                hit |= predicted == target
            kl = kl * ~(hit & ~(hit[:n][src_a] | hit[:n][src_b]))
        return kl.mean()

    def _path(self, out_c: Tensor, out_t: Tensor, shifts: _CallShifts | None, keep: Tensor, idx: Tensor,
              n: int) -> Tensor:
        """The causal-path penalty: with ``path="units"``, the mean over the suspect layers of each layer's mean over
        its calls of the stamped rows' squared shift of its suspect units from their clean rows', scaled by those units'
        variance (:func:`scaled_shift`; ``shifts``, read as the calls ran); with ``path="logit"``, the stamped rows'
        rise in target probability over their clean rows'."""
        if self.path == "units":
            return shifts.penalty(out_t)  # type: ignore[union-attr]
        effect = out_t.softmax(1).gather(1, idx) - out_c.softmax(1).gather(1, idx).detach()
        return (effect.squeeze(1).clamp_min(0) * keep).sum() / n

    def _unlearn(self, out_t: Tensor, y: Tensor, idx: Tensor) -> Tensor:
        """Mean cross-entropy of the stamped rows towards their true labels; with ``balance``, plus the mean over the
        rows whose label is their target (0 where there are none), summed and counted on the device (a boolean
        selection, ``ce[own]``, and ``own.any()`` read the device at every step)."""
        if not self.__dict__.get("_labels_checked", False):  # the first step: one read (later, torch's refusal on the
            check_label_range(y, out_t.shape[1])  # CPU names them below; on a GPU its device-side assert would)
            self._labels_checked = True
        try:
            ce = F.cross_entropy(out_t, y, reduction="none")
        except IndexError:  # "Target 3 is out of bounds.": the labels read on this error path only
            check_label_range(y, out_t.shape[1])
            raise
        if not self.balance:
            return ce.mean()
        own = y == idx.squeeze(1)
        return ce.mean() + torch.where(own, ce, 0.0).sum() / own.sum().clamp_min(1)


def scaled_shift(stamped: Tensor, clean: Tensor) -> Tensor:
    r"""The units path's penalty of one call of a suspect layer: the stamped rows' mean squared shift of the suspect
    units from their clean rows', divided by the variance of those units' values over the clean and the stamped rows
    (no gradient), so that it is in no layer's units: a layer's output multiplied by ``c`` gives the same value.

    .. math::
        P = \frac{\operatorname{mean}_{r,u}\big(h_u(T(x_r)) − sg[h_u(x_r)]\big)^2}
                 {\max\big(sg\big[\operatorname{Var}_{r,u}\{h_u(x_r),\ h_u(T(x_r))\}\big],\ \text{tiny}\big)}
        \in [0, 4]

    (``r`` the rows, ``u`` the suspect units and any position axes.) The variance pools both halves, not the clean rows
    alone: units silent on clean rows that the trigger wakes (a backdoor neuron) have a clean variance of about 0, and
    a ratio to it would be as large as its floor makes it; the pooled one bounds the ratio by 4 (the squared distance
    of two values is at most 4 times their spread's mean square about the pooled mean). ``tiny`` (the dtype's
    smallest normal number) keeps units constant on both halves at 0.

    Args:
        stamped: the suspect units on the stamped rows ``[N, U, ...]`` (with autograd).
        clean: the same units on the clean rows, detached.

    Examples:
        >>> clean, stamped = torch.zeros(4, 2), torch.tensor([[1.0, 0.0]]).repeat(4, 1)
        >>> [round(float(scaled_shift(c * stamped, c * clean)), 4) for c in (1.0, 3.77)]  # 0.5 / 0.1875 at any scale
        [2.6667, 2.6667]
    """
    stamped, clean = _at_least_float32(stamped), _at_least_float32(clean)
    spread = torch.cat([clean, stamped.detach()]).var(unbiased=False)
    return (stamped - clean).pow(2).mean() / spread.clamp_min(torch.finfo(spread.dtype).tiny)


def _as_is(t: Tensor) -> Tensor:
    """A saved tensor packed and unpacked as it is."""
    return t


def _says_sequence_first(module: nn.Module) -> bool:
    """Whether ``module`` says it returns ``[T, N, ...]``: ``batch_first=False`` on itself (``nn.GRU``, ``nn.LSTM``,
    ``nn.MultiheadAttention``) or on the attention it holds, where it has no such attribute of its own
    (``nn.TransformerEncoderLayer``/``DecoderLayer`` keep it on ``self_attn``, ``nn.TransformerEncoder``/``Decoder`` on
    their first layer's), all ``batch_first=False`` by default."""
    for path in ("", "self_attn", "layers.0.self_attn"):
        try:
            held = module.get_submodule(path) if path else module
        except AttributeError:
            continue
        said = getattr(held, "batch_first", None)
        if said is not None:
            return said is False
    return False


class _CallShifts:
    """The causal-path penalty's part of each call of the suspect layers, reduced as the call arrives (a ``capture``
    ``keep``): the scaled mean squared shift of the suspect units on the stamped rows from their clean rows
    (:func:`scaled_shift`; the second half of the ``rows`` from the first, or with ``split``, the stamped pass's call
    from the clean pass's call of the same number), summed per layer with a count of calls. What is kept is a scalar
    per layer, not every call's output: a GRU cell unrolled over 200 steps or a backbone run on each view of a
    test-time-augmentation wrapper kept 200 (8) copies of the layer's whole output a training step (with ``split``, the
    clean pass's calls are held, detached, until the stamped pass pairs with them: views of the outputs the pass
    made). A call that cannot be paired row by row is noted, the first per layer, and refused by :meth:`penalty` after
    the pass, which knows the number of calls.

    Args:
        model: the model whose suspect layers these are (to read a module's ``batch_first``).
        suspects: layer name -> its suspect units.
        unit_dims: each layer's ``unit_dim``.
        head_counts: each layer's ``num_heads``.
        rows: the rows of the term's pass (clean, then stamped: twice the clean rows; with ``split``, of each pass).
        split: the clean and the stamped rows run as two passes (:class:`~.paired_rows.PairedPasses`); set
            :attr:`stamped_pass` between them.
    """

    def __init__(self, model: nn.Module, suspects: Mapping[str, Sequence[int]], unit_dims: Mapping[str, int | None],
                 head_counts: Mapping[str, int | None], rows: int, *, split: bool = False) -> None:
        self.suspects, self.unit_dims, self.head_counts, self.rows = suspects, unit_dims, head_counts, rows
        # split: the clean and the stamped rows run as two passes of `rows` rows each (PairedPasses), the clean pass's
        # calls held (detached) until the stamped pass's call of the same number pairs with them
        self.clean: dict[str, list[Tensor]] | None = {k: [] for k in suspects} if split else None
        self.stamped_pass = not split
        self.want = f"{rows} in each of its two passes" if split else rows
        self.sequence_first = {k for k in suspects if _says_sequence_first(model.get_submodule(k.split(":")[0]))}
        self.calls = dict.fromkeys(suspects, 0)
        self.total: dict[str, Tensor] = {}
        self.refused: dict[str, tuple[int, dict[str, Any]]] = {}  # layer -> its first call not paired, and why
        self.without_grad: dict[str, int] = {}  # layer -> its first call without autograd
        self.skipped: set[str] = set()  # layers skipped at random in this training step (LayerDrop): no units this step
        self.training = model.training

    def __call__(self, name: str, a: Tensor) -> Tensor:
        if not self.stamped_pass:  # the clean pass of a split step: held for the stamped pass's call of this number
            self.clean[name].append(a.detach())  # type: ignore[index]
            return a.new_zeros(())
        self.calls[name] += 1
        if name in self.refused or not self._paired(name, a):
            return a.new_zeros(())
        if not a.requires_grad:  # refused after the pass if the model's output carries autograd
            self.without_grad.setdefault(name, self.calls[name])
        u = self.suspects[name]
        layout = resolve_layout(a.shape, self.unit_dims[name], self.head_counts[name])
        # what the shift's backward keeps is saved outside a torch.utils.checkpoint segment holding the layer: its
        # recomputation in the backward pass runs no hook, so the segment must count none of it as its own
        with torch.autograd.graph.saved_tensors_hooks(_as_is, _as_is):
            h = to_units(a, layout)
            if self.clean is None:
                m = self.rows // 2
                shift = scaled_shift(h[m:, u], h[:m, u].detach())
            else:
                shift = scaled_shift(h[:, u], to_units(self.clean[name][self.calls[name] - 1], layout)[:, u])
        self.total[name] = shift if name not in self.total else self.total[name] + shift
        return shift

    def _paired(self, name: str, a: Tensor) -> bool:
        """Whether call ``a`` holds the pass's rows on its first axis; else why not is noted."""
        call = self.calls[name]
        # [T, N, ...]: the pass's rows on the second axis, where the module says batch_first=False or the first is
        # no rows nor a multiple of them (a module that says it but returns [N, H], a user's encoder returning its last
        # hidden state, is paired; [N * heads, T, d], the heads folded into the rows, T equal to the rows by chance, and
        # [T, N, d], T a multiple of the rows, fit both readings: both told)
        if a.dim() >= 3 and a.shape[1] == self.rows and (
                name in self.sequence_first or a.shape[0] != self.rows and a.shape[0] % self.rows != 0):
            why = "the module says batch_first=False" if name in self.sequence_first else f"its second axis has the {self.rows} rows"
            self.refused[name] = call, {"text": _SEQUENCE_FIRST, "shape": list(a.shape), "why": why}
        elif a.dim() >= 3 and a.shape[1] == self.rows and a.shape[0] != self.rows:  # a multiple of the rows first
            self.refused[name] = call, {"text": _ROWS_OR_SEQUENCE_FIRST, "shape": list(a.shape)}
        elif a.dim() == 0 or a.shape[0] != self.rows:
            self.refused[name] = call, {"text": _OTHER_ROWS, "call": call, "rows": a.shape[0] if a.dim() else 0}
        elif self.clean is not None and (call > len(self.clean[name]) or self.clean[name][call - 1].shape != a.shape):
            held = self.clean[name][call - 1].shape if call <= len(self.clean[name]) else None
            self.refused[name] = call, {"text": _UNPAIRED_CALLS, "call": call, "clean": len(self.clean[name]),
                                        "shape": f"shape {list(a.shape)}", "held": list(held) if held is not None else "no call"}
        return name not in self.refused

    def penalty(self, out_t: Tensor) -> Tensor:
        """The mean over the layers that ran of each layer's mean over its calls (0 where every layer was
        :attr:`skipped`), the refusals raised in the layers' order, a layer's in the order of its calls (a call
        without autograd where the model's stamped output ``out_t`` carries it: its penalty would be a constant)."""
        shifts = []
        for k in self.suspects:
            if self.clean is not None and k not in self.refused and self.calls[k] < len(self.clean[k]):
                # the stamped pass stopped calling the layer before the clean pass did: its last calls have no twin
                held = list(self.clean[k][self.calls[k]].shape)
                raise ValueError(_UNPAIRED_CALLS.format(layer=k, call=self.calls[k] + 1, shape="no call", held=held,
                                                        clean=len(self.clean[k])))
            if not self.calls[k] and k in self.skipped:
                continue
            if not self.calls[k]:
                where = _NOT_RUN_TRAINING if self.training else " (the model in eval mode)"
                raise ValueError(_NOT_RUN.format(layer=k, where=where))
            refused_at, why = self.refused.get(k, (self.calls[k] + 1, None))
            if out_t.requires_grad and self.without_grad.get(k, refused_at) < refused_at:
                raise ValueError(_NO_PATH_GRADIENT.format(layer=k))
            if why is not None:
                calls = "once" if self.calls[k] == 1 else f"{self.calls[k]} times"
                text = why.pop("text")
                raise ValueError(text.format(layer=k, want=self.want, calls=calls, **why))
            shifts.append(self.total[k] / self.calls[k])  # the mean over the layer's calls: one call, its shift
        return torch.stack(shifts).mean() if shifts else out_t.new_zeros(())
