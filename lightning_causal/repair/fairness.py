"""CounterfactualFairnessTerm: penalise the change of the model's output under a counterfactual
flip of the sensitive attribute (a column of tabular rows, or identity terms in token ids:
counterfactual logit pairing)."""

from __future__ import annotations

import math
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from lightning_causal._compat import is_autocast_enabled
from lightning_causal.causal.engine.ablation import padding_positions
from lightning_causal.causal.engine.checks import check_float, ranks_beyond
from lightning_causal.causal.engine.forward import Forward, ForwardArgs, OutputSpec
from lightning_causal.causal.engine.forward_args import tensor_leaves
from lightning_causal.causal.engine.state import ONE_LOGIT_ROWS, check_one_logit
from lightning_causal.causal.engine.token_ids import (
    EmbeddingReader,
    embedding_lookup_error,
    float_code_error,
)
from lightning_causal.causal.engine.user_frame import outside_package
from lightning_causal.causal.scm.attribute_flip import (
    resolve_counterfactual,
    warn_one_hot_flip,
)
from lightning_causal.causal.scm.counterfactual_checks import (
    check_counterfactual_ids,
    keep_padding,
    token_readers,
    warn_padding_from_features,
)
from lightning_causal.causal.scm.fairness import check_output_columns, one_value_per_sample
from lightning_causal.causal.scm.token_swap import TokenSwap
from lightning_causal.repair.base import SEVERAL_INPUTS_FIX, RepairTerm
from lightning_causal.repair.paired_rows import PairedPasses, pass_records

__all__ = ["CounterfactualFairnessTerm", "DEFAULT_FAIRNESS_WEIGHT"]

_DISTANCES = ("abs_prob", "sym_kl", "logit")
#: Default weight of the term; see the class docstring and ``benchmarks/RESULTS.md``.
DEFAULT_FAIRNESS_WEIGHT = 5.0


def _as_float(outputs: Tensor) -> Tensor:
    check_output_columns(outputs)
    return outputs.float() if outputs.dtype in (torch.float16, torch.bfloat16) else outputs


def _total_variation(p_logits: Tensor, q_logits: Tensor, signs: Callable[[Tensor], Tensor]) -> Tensor:
    r"""Mean total-variation distance ``(1/N) Σ_i ½‖softmax(p_i) − softmax(q_i)‖₁`` between two
    batches of logits ``[N, C]`` (or single logits ``[N]``/``[N, 1]``, class probabilities ``(1 − σ, σ)``).

    Two classes need no softmax: ``½‖p − q‖₁ = |σ(z_1 − z_0) − σ(z_1' − z_0')|``, computed as
    ``torch.dist(σ(P s), σ(Q s), 1) / N`` with ``s = (−1, 1)``. On small models the cost of this
    term is per-op overhead, so it uses few autograd nodes: ``torch.dist`` (one node) replaces
    ``l1_loss``'s sub, abs and sum.
    """
    a, b = _as_float(p_logits), _as_float(q_logits)
    if a.dim() == 1 or a.shape[1] == 1:
        za, zb = a.reshape(-1), b.reshape(-1)
    elif a.shape[1] == 2:
        s = signs(a)
        za, zb = torch.mv(a, s), torch.mv(b, s)
    else:
        return torch.dist(a.softmax(dim=1), b.softmax(dim=1), 1).mul(0.5 / a.shape[0])
    return torch.dist(torch.sigmoid(za), torch.sigmoid(zb), 1).mul(1.0 / a.shape[0])


def _logit_pairing(p_logits: Tensor, q_logits: Tensor) -> Tensor:
    r"""Counterfactual logit pairing (Garg et al. 2019): ``(1/N) Σ_i ‖z̃_i − z̃'_i‖₁`` with
    ``z̃ = z − mean_c z`` the centred logits (a softmax is blind to a shift of all logits); a
    single logit ``[N]``/``[N, 1]`` is compared as it is. For two classes this is Garg et al.'s
    ``|g(x) − g(x')|`` with ``g = z_1 − z_0``, the logit of the positive class.

    A logit equal in both (a class ruled out in both rows, ``masked_fill(~seen, -inf)``) differs by 0, not by
    ``-inf − (-inf)`` = NaN: the same value as a finite fill (``-1e9``) gives. A class ruled out in one row of a pair
    only makes that pair's distance ``+inf``, not ``d − mean(d)`` = ``-inf − (-inf)`` = NaN: the limit of a finite fill
    ``-M``, whose pair adds about ``2M(C − 1)/C`` (``M → ∞``), as the symmetric KL is ``+inf`` there; NaN outputs stay
    NaN, and a pair with a ``+inf`` output (an overflow, a diverged model: no class ruled out) is NaN, as the symmetric KL
    and the total variation are."""
    a, b = _as_float(p_logits), _as_float(q_logits)
    if a.dim() == 1 or a.shape[1] == 1:
        a, b = a.reshape(-1), b.reshape(-1)
        return _difference(a, b).abs().masked_fill(torch.maximum(a, b).isposinf(), math.nan).mean()
    d = _difference(a, b)
    infinite = d.isinf()  # a class ruled out in one row of the pair only: zeroed, so the pair's other logits keep finite gradients
    d = d.masked_fill(infinite, 0.0)
    pairs = (d - d.mean(1, keepdim=True)).abs().sum(1).masked_fill(infinite.any(1), math.inf)
    # a +inf output (an overflow, a diverged model) rules nothing out: NaN, as sym_kl and abs_prob give, not the +inf
    # whose note names a class ruled out
    return pairs.masked_fill(torch.maximum(a, b).isposinf().any(1), math.nan).mean()


def _difference(a: Tensor, b: Tensor) -> Tensor:
    """``a − b``, 0 where both are the same infinity (a class ruled out with ``-inf`` in both), where ``inf − inf``
    would be NaN though nothing differs. Finite entries are unchanged, their gradients too: a finite logit equal in
    both rows (a class head initialised to zero) still passes its gradient on."""
    return (a - b).masked_fill((a == b) & a.isinf(), 0.0)


def _log_probs(outputs: Tensor) -> Tensor:
    """Log class probabilities of logits ``[N, C]``, or ``(log(1 − σ), log σ)`` of a single logit ``[N]``/``[N, 1]``;
    a single ``+inf`` logit (an overflow, a diverged model: no class ruled out) gives NaN, as ``log_softmax`` does of a
    ``+inf`` among several, not ``(-inf, 0)``, which read as the negative class ruled out (the fit's note of a ``-inf``
    mask); a single ``-inf`` is the positive class ruled out, as for the ``logit`` distance."""
    out = _as_float(outputs)
    if out.dim() == 1 or out.shape[1] == 1:
        z = out.reshape(-1)
        return torch.stack([F.logsigmoid(-z), F.logsigmoid(z)], 1).masked_fill(z.isposinf().unsqueeze(1), math.nan)
    return out.log_softmax(dim=1)


_READERS = "_readers_by_model"  # the embeddings found per model: CounterfactualFairnessTerm._readers
_READ_AS_OUTPUTS = "_outputs_read_as_regression"  # the first batch's labels said a regression: no logit to check
_PADDING_WARNED = "_feature_padding_warned"  # a per-position flip of all-zero positions, no mask: warned once
# a model that draws and runs a training-mode BatchNorm inside an activation-checkpointed segment: x_cf's replay of x's
# pass would be lost in the backward's recomputation, so both run as rows of one pass (as BackdoorSuppressionTerm does)
_CHECKPOINTED = (
    "CounterfactualFairnessTerm: the model draws random numbers in training (dropout, DropPath, random sign flips of "
    "positional encodings) and runs a BatchNorm layer in training mode inside an activation-checkpointed segment "
    "(torch.utils.checkpoint: gradient checkpointing), which the backward runs again without the hooks that pair each "
    "row with its counterfactual as a pass of its own. They run as rows of one pass, each with draws of its own, so "
    "that the term also penalises that noise (a column the model never reads has a term above 0). To pair them "
    "exactly, turn checkpointing off for the repair fit, put the BatchNorm layers outside the checkpointed segments, "
    "or keep them in eval mode (running statistics frozen: `m.eval()` for each BatchNorm module after `model.train()`)")


def _gathered_note(fargs: ForwardArgs) -> str | None:
    """What to add to the model's error in :meth:`CounterfactualFairnessTerm.loss` where it gathered by row a
    floating-point forward argument of the batch's first dimension (a weight passed whole whose first dimension happens
    to equal the batch's rows: ``x @ w``, ``w [2, 2]`` beside 2 rows, fails with torch's bare shape error), else
    ``None``; masks and ids (integer or boolean) are the rows' own."""
    per_sample = fargs.tensors()
    leaves = tensor_leaves((fargs.args, fargs.kwargs))
    places = [i for i, t in enumerate(leaves) if t.is_floating_point() and any(t is p for p in per_sample)]
    if not places:
        return None
    shapes = [list(leaves[i].shape) for i in places]
    return (f"The term gathered by row, as tensors of one entry per sample, the forward arguments' floating-point "
            f"tensors of first dimension {fargs.num_samples} (the batch's rows) at places {places} (shapes {shapes}, "
            "places in the order of the arguments' tensors); a tensor passed whole whose first dimension happens to equal "
            f"the batch's rows (a weight) must be marked: additional_forward_args=mark_whole(additional_forward_args, "
            f"{places}) (from lightning_causal.causal import mark_whole), keeping only the places of "
            "such tensors")


def _kernel_values(outputs: Tensor) -> bool:
    """Whether ``outputs`` ``[N, C]`` are independent probabilities (:func:`~lightning_causal.audits.label_task.\
independent_probabilities`: DUQ's RBF kernel values, a one-vs-rest head) that are no cumulative ones, ``P(rank > k)``
    non-increasing in ``k`` in every row (a CORAL head ending in ``nn.Sigmoid``).

    Examples:
        >>> _kernel_values(torch.tensor([[0.9, 0.1, 0.7]] * 8)), _kernel_values(torch.tensor([[0.9, 0.7, 0.1]] * 8))
        (True, False)
    """
    from lightning_causal.audits.label_task import independent_probabilities

    if independent_probabilities(outputs) is None:
        return False
    out = outputs.detach()
    return not bool((out[:, 1:] <= out[:, :-1]).all())


class CounterfactualFairnessTerm(RepairTerm):
    r"""Counterfactual-fairness penalty (Kusner et al. 2017; the repair step of CARE, Sun et al.
    2022; counterfactual logit pairing, CLP, Garg et al. 2019).

    For each batch, the counterfactual ``x_cf`` (sensitive attribute flipped, descendants
    recomputed by an SCM, or the naive flip; identity terms swapped in token ids) is built without
    gradient, and the model's outputs on ``x`` and ``x_cf`` are pulled together:

    .. math::
        \text{abs\_prob}: \; \frac{1}{N}\sum_i \tfrac12 \lVert p(x_i) − p(x_{cf,i}) \rVert_1
        \qquad
        \text{sym\_kl}: \; \frac{1}{N}\sum_i \tfrac12 \big(KL(p_i \Vert p_{cf,i}) + KL(p_{cf,i} \Vert p_i)\big)
        \qquad
        \text{logit}: \; \frac{1}{N}\sum_i \lVert \tilde z(x_i) − \tilde z(x_{cf,i}) \rVert_1

    with ``z̃ = z − mean_c z`` the centred logits (for two classes ``|Δ(z_1 − z_0)|``: Garg et al.'s
    CLP, ``|g(x) − g(x')|`` on the logit ``g``). The mean is over all ``N`` rows: rows the
    counterfactual leaves unchanged (e.g. sentences without identity terms) add 0 and are not run.
    For two classes ``abs_prob`` is therefore the mean ``|Δp|`` of
    :func:`~lightning_causal.causal.scm.fairness.counterfactual_fairness_gap` over the batch,
    its ``mean_abs`` (a mean over the changed rows only) times ``changed`` (their share): the two
    are equal only where every row changes (a flipped column), not for a token swap. A model that draws random
    numbers in training (dropout, DropPath, random sign flips of positional encodings) runs ``x`` and ``x_cf`` as two
    passes of the same draws, row for row: one pass gave each twin draws of its own, and the term penalised that
    noise (0.036 for a model behind dropout 0.2 that never reads the flipped column). Both branches carry gradient; distances are computed in at
    least float32 (stable under ``bf16-mixed``). Batches with forward arguments (an attention
    mask) pass them with ``additional_forward_args=``; they follow their rows into ``x_cf``, which
    runs with ``x``'s mask: a token swap changes the real tokens only, and a counterfactual that
    writes into padded positions is refused
    (:func:`~lightning_causal.causal.scm.fairness.counterfactual_inputs`). Ids, or codes of a float column the model
    casts (``x[:, j].long()``), that an embedding cannot look up are refused before the pass runs them (on a GPU the
    lookup would be a device-side assert): the embeddings are found once per model by a pass of up to 64 rows that
    leaves no trace (:func:`~lightning_causal.causal.scm.counterfactual_checks.token_readers`).

    For a regression model (one output, labels beyond [0, 1]) pass ``distance="logit"``: it
    penalises ``|f(x) − f(x_cf)|`` of the output itself, where the probabilities of ``abs_prob`` and
    ``sym_kl`` would be a saturated sigmoid (the term warns on such labels). Several outputs are
    compared centred (``z̃`` above), blind to a flip that moves all of them alike: for a regression
    of several outputs (or a multi-label classifier) give one term per output,
    ``output=lambda out: out[:, [k]]`` (the term warns on such labels).

    The default ``weight=5.0`` (with ``abs_prob``) was chosen on the synthetic SCM and on UCI
    Adult with ``benchmarks/bench_repair.py``; the gaps and accuracies it gives, beside weights 1
    and 20, are in ``benchmarks/RESULTS.md``.

    Args:
        counterfactual: ``scm.flip(column)``, an ``AttributeFlip``, a ``TokenSwap``, a callable
            ``x -> x_cf``, or an ``AdditiveNoiseSCM`` with ``sensitive``
            (:func:`~lightning_causal.causal.scm.attribute_flip.resolve_counterfactual`).
        sensitive: the column to flip for an SCM (name or index); optional otherwise.
        weight: constant or callable of the epoch (warm-up).
        distance: ``"abs_prob"`` (total variation), ``"sym_kl"`` or ``"logit"`` (CLP); default
            ``None``: ``"logit"`` for a ``TokenSwap`` (CLP), ``"abs_prob"`` otherwise.
        name: tag used in logs (default ``"counterfactual_fairness"``).
        fraction: share of each batch whose counterfactuals are penalised (the first
            ``ceil(fraction · N)`` rows; training batches are shuffled, so this is an unbiased,
            noisier estimate of the same penalty): fewer counterfactual rows per step at the
            price of a noisier penalty (step times in ``benchmarks/RESULTS.md``).
        output: which tensor of the model's return value holds the logits (``None``: a tensor,
            ``.logits`` or ``["logits"]``).

    Raises:
        ValueError: unknown ``distance``, ``sensitive`` not a column, negative ``weight``.

    Examples:
        >>> from lightning_causal.causal import AttributeFlip
        >>> term = CounterfactualFairnessTerm(AttributeFlip(0))
        >>> model = nn.Linear(2, 2)
        >>> x = torch.tensor([[0.0, 1.0], [1.0, 2.0]])
        >>> bool(term.loss(model, x, None) >= 0)
        True
    """

    def __init__(
        self,
        counterfactual: object,
        sensitive: str | int | None = None,
        weight: float | Callable[[int], float] = DEFAULT_FAIRNESS_WEIGHT,
        *,
        distance: str | None = None,
        name: str | None = None,
        fraction: float = 1.0,
        output: OutputSpec = None,
    ) -> None:
        super().__init__(weight, name, output=output)
        self.counterfactual = resolve_counterfactual(counterfactual, sensitive)
        if distance is None:
            distance = "logit" if isinstance(self.counterfactual, TokenSwap) else "abs_prob"
        if distance not in _DISTANCES:
            raise ValueError(f"Expected argument `distance` to be one of {_DISTANCES} but got {distance!r}")
        check_float("fraction", fraction, minimum=0.0, maximum=1.0, open_min=True)
        self.fraction = float(fraction)
        self.sensitive = sensitive if sensitive is not None else self.counterfactual.column
        self.distance = distance
        self._signs: Tensor | None = None

    @property
    def fusable(self) -> bool:
        """Whether :class:`~lightning_causal.repair.module.CausalRepairModule` may evaluate the
        counterfactuals in the task loss's forward pass: only when every row changes (a flipped
        binary column: ``AttributeFlip``, ``scm.flip``). Otherwise (token swaps, callables, which
        may leave rows as they are) :meth:`loss` runs the changed rows alone, so that unchanged
        rows add nothing (not even dropout noise)."""
        return self.counterfactual.changes_every_row

    def counterfactual_batch(self, x: Tensor) -> Tensor:
        """``x_cf`` for the batch ``x``: no gradient, computed in ``x``'s dtype outside autocast.

        Args:
            x: the batch's inputs ``[N, ...]``.
        """
        with torch.no_grad():
            if is_autocast_enabled(x.device.type):  # entering the context costs ~15 µs a batch
                with torch.autocast(device_type=x.device.type, enabled=False):
                    x_cf = self.counterfactual(x.detach())
            else:
                x_cf = self.counterfactual(x.detach())
        if not isinstance(x_cf, Tensor) or x_cf.shape != x.shape:
            raise ValueError(f"Expected the counterfactual of a batch {list(x.shape)} to have the same shape but got {getattr(x_cf, 'shape', type(x_cf))}")
        return x_cf if x_cf.dtype == x.dtype else x_cf.to(x.dtype)

    @property
    def needs_train_inputs(self) -> bool:
        return False

    def loss(self, model: nn.Module, x: Tensor, y: Tensor | None, *, additional_forward_args: Any = None) -> Tensor:
        """The distance between the model's outputs on ``x`` and ``x_cf``, averaged over the
        penalised rows; one forward pass over the rows the counterfactual changes and their
        counterfactuals (their forward arguments gathered by row), or, where the model draws random numbers in
        training mode, the rows and then their counterfactuals as two paired passes (``_paired_outputs``).

        Args:
            model: the network being fine-tuned.
            x: the batch's inputs ``[N, ...]`` (tabular rows or token ids).
            y: the batch's labels (read to check how the outputs are compared), or ``None``.
            additional_forward_args: the batch's forward arguments (attention masks), gathered by row;
                ``None``: none. A tensor whose first dimension is the batch's ``N`` goes with its rows, so a weight
                passed whole whose first dimension happens to equal ``N`` (``w [16, 4]`` on a short batch of 16 rows)
                is gathered by row too: :class:`~lightning_causal.repair.module.CausalRepairModule` keeps the
                decision of the fit's largest batch (``forward_args.WholeAcrossBatches``), but called directly (or on
                a fit's first batch when that one is the short one) nothing tells it apart: mark it whole,
                ``mark_whole((w,), [0])`` (``from lightning_causal.causal import mark_whole``; ``0``: its
                place among the arguments' tensors), as below. The model's ``RuntimeError`` on such a gathered weight (a
                shape error) names the floating-point tensors gathered by row, their places and that call.

        Examples:
            >>> from lightning_causal.causal import AttributeFlip
            >>> from lightning_causal.causal import mark_whole
            >>> class Weighted(nn.Module):  # runs with a weight passed beside the rows
            ...     def forward(self, x, w):
            ...         return x @ w
            >>> w, x = torch.eye(2), torch.tensor([[0.0, 1.0], [1.0, 2.0]])  # w: as many rows as the batch
            >>> term = CounterfactualFairnessTerm(AttributeFlip(0))
            >>> loss = term.loss(Weighted(), x, None, additional_forward_args=mark_whole((w,), [0]))
            >>> bool(torch.allclose(loss, term.loss_from_outputs(x @ w, AttributeFlip(0)(x) @ w, None)))
            True
        """
        x_cf = self.extra_inputs(x)
        k = x_cf.shape[0]
        pad = None if additional_forward_args is None else padding_positions(x, additional_forward_args, model=model)
        if pad is not None:  # x_cf runs with x's attention mask: padding stays as it is
            x_cf = keep_padding(self.counterfactual, x[:k], x_cf, pad[:k])
        elif not self.__dict__.get(_PADDING_WARNED):  # a per-position flip of all-zero positions, no mask: once a term
            self.__dict__[_PADDING_WARNED] = warn_padding_from_features(self.counterfactual, x[:k], x_cf)
        rows = (x_cf != x[:k]).reshape(k, -1).any(1).nonzero().squeeze(1)
        if rows.numel() == 0:
            return torch.zeros((), device=x.device)  # nothing to pair in this batch
        # ids or codes no embedding can look up: refused before the pass (on a GPU a device-side assert spoils the process)
        check_counterfactual_ids(self.counterfactual, x_cf[rows], self._readers(model, x, additional_forward_args))
        fargs = ForwardArgs(additional_forward_args, x.shape[0])
        both_inputs = torch.cat([x[rows], x_cf[rows]])
        try:
            raw, picked, out = self._paired_outputs(model, x[rows], x_cf[rows], fargs, rows)
        except (IndexError, RuntimeError) as caught:  # an embedding's failed lookup, which names nothing
            # nn.Embedding's IndexError, nn.EmbeddingBag's RuntimeError on the CPU, a table the model indexes with the ids set
            err = embedding_lookup_error(caught, x_cf[rows][x_cf[rows] != x[rows]])
            if err is None:  # the model's own error
                note = _gathered_note(fargs) if type(caught) is RuntimeError else None
                if note is None:
                    raise
                raise RuntimeError(f"{caught}. {note}") from caught  # a weight passed whole, gathered by row: a shape error
            if both_inputs.is_floating_point():  # a code column the model casts (x[:, j].long()) set to no code
                raise float_code_error(err, "counterfactual", f"the counterfactuals of {self.counterfactual!r:.120}") from caught
            raise ValueError(
                f"Expected the counterfactual {self.counterfactual!r:.120} to give token ids the model can look up, but "
                f"the forward pass on the batch and its counterfactuals failed with IndexError: {err} (largest id: "
                f"{int(x[rows].max())} in the batch, {int(x_cf[rows].max())} in the counterfactuals); check its ids "
                "against the vocabulary (e.g. with counterfactual_fairness_gap, which names the embedding)"
            ) from caught
        m = rows.numel()
        if "_continuous" not in self.__dict__:  # the first pass: a continuous action's means, which no distance is for
            from lightning_causal.audits.task_warnings import continuous_moment

            self._continuous = continuous_moment(raw, picked)
        return self._distance(out[:m], out[m:], y, model) * (m / k)

    def _paired_outputs(self, model: nn.Module, a: Tensor, b: Tensor, fargs: ForwardArgs, rows: Tensor,
                        ) -> tuple[Any, Tensor, Tensor]:
        """The model's return value on ``a`` (and ``b``), the outputs it gives, and the outputs on ``a`` then ``b``,
        ``[2m, ...]``, row ``i`` of ``b`` paired with row ``i`` of ``a``; both run with the forward arguments of the
        batch's ``rows``.

        One pass of both halves pairs them exactly where the pass draws no random numbers. Where it draws them in
        training mode (dropout, DropPath, a graph transformer's random sign flips of its Laplacian eigenvector
        encodings), the twins of one pass get draws of their own, and the distance penalised the model's own noise: a
        model that never reads the flipped column had a term of 0.036 behind dropout 0.2 and 0.117 under sign flips
        (``tests/repair/test_newuser109_paired_fairness_rows.py``). ``a`` then runs first and ``b`` as a second pass
        from the same random state, normalised by ``a``'s BatchNorm statistics
        (:class:`~lightning_causal.repair.paired_rows.PairedPasses`, as ``BackdoorSuppressionTerm`` pairs its stamped
        rows). Whether the model draws is read at every step from the pass the step runs first, as the backdoor term
        reads it: a model that drew at its last step runs ``a`` first and, where it draws nothing now (its dropout set
        to 0), that pass is undone and one pass of both halves runs; otherwise the joint pass runs, undone where it
        drew. A pass undone, and ``a``'s pass before ``b`` replays it, leave the buffers as they found them
        (:meth:`~lightning_causal.repair.paired_rows.PairedPasses.undo`, ``replay``): a step advances spectral norm's
        power iteration once, and ``b`` reads the weight ``a`` read (a column never read cost 0.012 before). A model
        that draws and runs a training-mode BatchNorm inside an activation-checkpointed segment runs one pass of both
        halves, warned (``_CHECKPOINTED``): the backward's recomputation would run ``b`` without ``a``'s statistics."""
        def run(index: Tensor, inputs: Tensor) -> Callable[[], tuple[Any, Tensor]]:
            args, kwargs = fargs.take(index)
            return lambda: self._raw_and_outputs(model, inputs, kwargs if kwargs else args or None)

        draws, written = pass_records(self)
        pairs = PairedPasses(model, a.device, written)

        def joint() -> tuple[Any, Tensor, Tensor]:
            raw, out = pairs.first(run(torch.cat([rows, rows]), torch.cat([a, b])), norms=False)
            return raw, out, out

        def paired(first: tuple[Any, Tensor]) -> tuple[Any, Tensor, Tensor]:
            return first[0], first[1], torch.cat([first[1], pairs.replay(run(rows, b))[1]])

        return pairs.paired(draws, joint, lambda: pairs.first(run(rows, a)), paired, rows=a.shape[0],
                            warn=lambda: warnings.warn(_CHECKPOINTED, UserWarning, stacklevel=outside_package()))

    def _readers(self, model: nn.Module, x: Tensor, additional_forward_args: Any) -> list[EmbeddingReader]:
        """The embeddings that look ``x``'s ids or codes up (:func:`~lightning_causal.causal.scm.counterfactual_checks.token_readers`:
        a pass of up to 64 rows that leaves no trace), found once per model: again for inputs of another layout only
        where a reader reads some positions of a sample (a code column), not for token ids of another length."""
        by_model = self.__dict__.setdefault(_READERS, weakref.WeakKeyDictionary())  # by weak reference: not copied
        kept = by_model.get(model)
        if kept is None or kept[0] != x.dtype or kept[1] not in (None, tuple(x.shape[1:])):
            forward = Forward(model, output=self.output, additional_forward_args=additional_forward_args, num_samples=x.shape[0])
            readers = token_readers(forward, x)
            layout = tuple(x.shape[1:]) if any(r.columns is not None for r in readers) else None
            kept = by_model[model] = (x.dtype, layout, readers)
        return kept[2]

    def __getstate__(self) -> dict[str, Any]:
        """Pickled and copied without the readers found per model (weak references; found again on use)."""
        state = super().__getstate__()
        state.pop(_READERS, None)
        state.pop("_draws", None)
        state.pop("_written", None)
        return state

    def extra_inputs(self, x: Tensor) -> Tensor:
        """The inputs the term needs besides ``x``: the counterfactuals of its first
        ``ceil(fraction · N)`` rows (no gradient).

        :class:`~lightning_causal.repair.module.CausalRepairModule` evaluates them in the same
        forward pass as the task loss and then calls :meth:`loss_from_outputs`.

        Args:
            x: the batch's inputs ``[N, ...]`` (one tensor).
        """
        if isinstance(x, (tuple, list)):
            raise ValueError(f"CounterfactualFairnessTerm acts on one input tensor but the batch holds {len(x)} inputs (a "
                             f"model of several inputs); {SEVERAL_INPUTS_FIX}")
        if isinstance(x, Tensor) and x.dim() == 1:  # one id per sample: no column to flip
            raise ValueError(one_value_per_sample(x, "x"))
        if not isinstance(x, Tensor) or x.dim() < 2:
            raise ValueError(f"Expected a batch `x` [N, ...] (tabular rows or token ids) but got {getattr(x, 'shape', type(x))}")
        self._check_one_hot(x)
        n = x.shape[0]
        k = n if self.fraction == 1.0 else max(1, math.ceil(self.fraction * n))
        return self.counterfactual_batch(x if k == n else x[:k])

    def _check_one_hot(self, x: Tensor) -> None:
        """Once (on the first batch of 16 rows or more): warn when the flipped column is one column of
        a one-hot block, as :class:`~lightning_causal.audits.FairnessAudit` does: the penalty would pull
        the model's outputs on rows together with rows no encoder produces (all zeros, or two ones)."""
        if getattr(self, "_one_hot_checked", False) or x.dim() != 2 or x.shape[0] < 16:
            return
        self._one_hot_checked = True
        warn_one_hot_flip(f"CounterfactualFairnessTerm {self.name!r}", self.counterfactual, x,
                          "the penalty pulls the model's outputs on those together with the real rows'")

    def loss_from_outputs(self, outputs: Tensor, extra_outputs: Tensor, y: Tensor | None) -> Tensor:
        """The distance between the model's outputs on ``x`` and on ``extra_inputs(x)`` (whose rows
        are the counterfactuals of the first rows of ``x``).

        Args:
            outputs: the model's outputs on ``x`` ``[N, C]``.
            extra_outputs: its outputs on :meth:`extra_inputs` ``[k, C]``.
            y: the batch's labels (read to check how the outputs are compared, by the task a
                ``CausalRepairModule`` handed over: :meth:`~lightning_causal.repair.base.RepairTerm.task_of`), or ``None``.
        """
        return self._distance(outputs, extra_outputs, y, None)

    def _distance(self, outputs: Tensor, extra_outputs: Tensor, y: Tensor | None, model: nn.Module | None) -> Tensor:
        """:meth:`loss_from_outputs`, the labels checked by the task of ``model`` where the term was handed none."""
        self.checked_logits(outputs)
        if not getattr(self, "_labels_checked", False):  # a regression's outputs in [0, 1] are no probabilities
            self.__dict__[_READ_AS_OUTPUTS] = self._check_labels(y, outputs, model)
        if not getattr(self, "_one_logit_checked", False):
            self._check_one_logit(outputs, model)
        if outputs.shape[0] != extra_outputs.shape[0]:
            outputs = outputs[: extra_outputs.shape[0]]
        if self.distance == "abs_prob":
            return _total_variation(outputs, extra_outputs, self._class_signs)
        if self.distance == "logit":
            return _logit_pairing(outputs, extra_outputs)
        lp, lq = _log_probs(outputs), _log_probs(extra_outputs)  # a class of probability 0 in both adds 0, not NaN
        return 0.5 * ((lp.exp() - lq.exp()) * _difference(lp, lq)).sum(1).mean()

    def _check_one_logit(self, outputs: Tensor, model: nn.Module | None) -> None:
        """Where a sigmoid of one output follows (``distance`` not ``"logit"``, outputs not read as a regression's):
        whether it is a probability already (:func:`~lightning_causal.causal.engine.state.check_one_logit`), on the
        first batch of :data:`~lightning_causal.causal.engine.state.ONE_LOGIT_ROWS` rows or more (a first batch of 4
        rows tells nothing; the flag set, no step reads the outputs on the host again)."""
        if self.distance != "logit" and not self.__dict__.get(_READ_AS_OUTPUTS) \
                and (outputs.dim() == 1 or outputs.dim() == 2 and outputs.shape[1] == 1):
            if outputs.shape[0] < ONE_LOGIT_ROWS:
                return  # too few rows to tell: the next batch is read
            check_one_logit(outputs, type(self).__name__, model)
        self._one_logit_checked = True

    def _non_finite_note(self, value: Tensor) -> str:
        """What the ``FloatingPointError`` of :func:`~lightning_causal.repair.objective.add_terms` adds where the term's
        ``value`` is not finite (read on the failing step only): a class the model rules out with ``-inf`` in one row
        of a pair and not in the other (a mask that depends on the input), where the symmetric KL and the logits'
        pairing are truly ``+inf``; the total variation (``abs_prob``) stays bounded by 1. A NaN (NaN outputs) gets no
        note. A large finite fill is not offered as a way out: the term then grows with the fill (a ``-1e4`` fill gave
        ``logit`` 13,332 and ``sym_kl`` 951 beside a task loss of 0.9) and outweighs the task loss."""
        if self.distance == "abs_prob" or not bool(value.isposinf()):
            return ""  # a NaN: NaN outputs, not a class ruled out
        what = "the symmetric KL" if self.distance == "sym_kl" else "the difference of the two rows' logits"
        return (f"; the term {self.name!r} (distance={self.distance!r}) is +inf: a class the model rules out (a -inf "
                "logit, probability 0) in one row of a pair and not in the other (a mask that depends on the input, "
                f"which the counterfactual moves), where {what} is infinite: pass distance='abs_prob' (the total "
                "variation, bounded by 1, which counts the other row's probability of that class), or rule the class "
                "out in both rows of a pair (a mask the counterfactual does not move). A large finite fill "
                "(`masked_fill(mask, -1e4)`) is no way out: the term then grows with the fill (distance='logit' by "
                "about 2·fill·(C−1)/C a pair, 'sym_kl' by half the fill times the other row's probability of the "
                "class) and outweighs the task loss")

    def _check_labels(self, y: Tensor | None, outputs: Tensor, model: nn.Module | None = None) -> bool:
        """Run once, on the first batch (:meth:`_distance`): warn when the labels are multi-hot (a multi-label classifier) and the
        model has several outputs, whose softmax or centred logits every distance compares; or when
        the labels are a regression target (``regression_labels`` with the output width: fractional
        floats beyond [0, 1], or whole numbers no output can be a class of, such as counts of one
        output) and the distance compares probabilities, whose sigmoid saturates on such outputs. The task that
        decides (multi-label, regression) whatever a batch's rows hold is :meth:`~lightning_causal.repair.base.RepairTerm.task_of`
        ``model``: the repair module's hand-over, else what ``model`` says. Returns whether the outputs were read as a
        regression's or a continuous distribution's, whose outputs are no logits."""
        self._labels_checked = True
        if self._warn_continuous(y, outputs):
            return True
        from lightning_causal.audits.label_task import per_level_labels
        from lightning_causal.audits.options import multi_hot_labels, regression_labels

        task = self.task_of(model)
        if multi_hot_labels(y, task=task) and outputs.dim() == 2 and outputs.shape[1] >= 2:
            warnings.warn(
                f"CounterfactualFairnessTerm {self.name!r} (distance={self.distance!r}) compares the softmax over the "
                f"model's {outputs.shape[1]} outputs (distance='logit': their centred logits), but the batch's labels are "
                f"multi-hot {list(y.shape)} (a multi-label classifier?): each label's sigmoid is its own probability, and "
                "the softmax is blind to a flip that moves every label's logit alike (every label more likely for one "
                "group: penalty 0). Pass one term per label, `output=lambda out: out[:, [k]]` (each with its own "
                "`name=`), which compares label k's sigmoid", UserWarning, stacklevel=outside_package())
            return False
        levels = not callable(self.output) and per_level_labels(y, outputs, task)
        # ranks 0 .. C beside C outputs are an ordinal head's whatever its outputs lie in (a CORAL head ending in
        # nn.Sigmoid): its levels' words, not those of independent probabilities, which DUQ's kernel values beside
        # class indices 0 .. C - 1 get
        beyond = levels and ranks_beyond(y, int(outputs.shape[1]))
        if not beyond and self._warn_independent(y, outputs, task):
            return False
        if levels and not beyond and _kernel_values(outputs):  # DUQ trained with nn.BCELoss beside its class indices
            return False  # (distance='logit', which _warn_independent advises): no ordinal head, no levels' words
        if levels:
            self._warn_levels(y, outputs, task)
            return False
        if not isinstance(y, Tensor) or task != "regression" and (not y.is_floating_point() or bool(((y >= 0) & (y <= 1)).all())):
            return task == "regression"  # class indices and soft labels; a model that says it regresses: any labels
        if not regression_labels(y, int(outputs.shape[1]) if outputs.dim() == 2 else 1, task=task):  # counts of one output are
            return task == "regression"
        several = outputs.dim() == 2 and outputs.shape[1] >= 2
        per_output = ("one term per output, `output=lambda out: out[:, [k]]` with distance='logit' (each with its own "
                      "`name=`), which penalises |f_k(x) − f_k(x_cf)|")
        if self.distance == "logit":
            if several:  # centred: a shift of every output alike is no change to CLP
                warnings.warn(
                    f"CounterfactualFairnessTerm {self.name!r} with distance='logit' compares the model's "
                    f"{outputs.shape[1]} outputs centred (logits less their mean, as counterfactual logit pairing does), "
                    "but the batch's labels are a regression target (not classes of the outputs; a regression of several outputs?): a "
                    "flip that moves every output alike gets penalty 0. Pass " + per_output, UserWarning, stacklevel=outside_package())
            return True
        warnings.warn(
            f"CounterfactualFairnessTerm with distance={self.distance!r} compares class probabilities (the softmax of "
            "the outputs, the sigmoid of a single output), but the batch's labels are a regression target (not classes "
            "of the outputs: fractions beyond [0, 1], or whole numbers such as counts beyond the output's classes): the sigmoid of a regression output saturates (an output moved from 10 to 13 changes "
            "its sigmoid by 4e-5), so the penalty barely moves the model. Pass "
            + (per_output if several else "distance='logit' to penalise |f(x) − f(x_cf)| of the output itself"),
            UserWarning, stacklevel=outside_package())
        return True

    def _warn_independent(self, y: Tensor | None, outputs: Tensor, task: str | None) -> bool:
        """Warn where the distance takes the softmax of outputs that are independent probabilities beside class indices
        (:func:`~lightning_causal.audits.label_task.independent_probabilities`: DUQ's RBF kernel values, a one-vs-rest
        head's sigmoids), whose softmax compresses their change; not under ``distance='logit'`` (the outputs centred,
        their own change) nor where the model says it trains logits or regresses (a regression's outputs are no class
        scores: :meth:`_check_labels` warns of them as such). Returns whether it warned."""
        from lightning_causal.audits.label_task import independent_probabilities
        from lightning_causal.audits.task_warnings import softmax_of_probabilities

        if self.distance == "logit" or task in ("multiclass", "regression") or not isinstance(y, Tensor) \
                or y.is_floating_point():  # a regression's outputs are no class scores: its own warning (below)
            return False
        probabilities = independent_probabilities(outputs)
        if probabilities is not None:
            warnings.warn(softmax_of_probabilities(
                f"CounterfactualFairnessTerm {self.name!r} (distance={self.distance!r}) compares", probabilities,
                "the penalty is the change of that softmax, smaller than the outputs' own: pass distance='logit' "
                "(the outputs' own change, centred)"), UserWarning, stacklevel=outside_package())
        return probabilities is not None

    def _warn_levels(self, y: Tensor, outputs: Tensor, task: str | None) -> None:
        """Warn where the model says each of its outputs is its own sigmoid decision (a multi-label loss or ``task``),
        or says nothing and the batch's ranks reach one beyond its outputs (``task`` ``None``: the CORAL loss given as
        ``task_loss=`` or computed in ``training_step``), while the batch's labels are ranks ``[N]``
        (:func:`~lightning_causal.audits.label_task.per_level_labels`): per-level
        logits, an ordinal head's cumulative logits (CORAL, ``rank > k``), whose softmax is no probability of a rank
        and whose centred logits a shared score moves alike (CORAL's ``s + b_k``: ``distance='logit'`` is 0 whatever
        the flip does), as :func:`~lightning_causal.audits.label_task.level_outputs` warns the audits."""
        from lightning_causal.audits.label_task import SAYS_NOTHING, ranks_said, sigmoid_levels

        compared = ("their centred logits (logits less their mean, which a score shared by every level moves alike: "
                    "a penalty of 0 for CORAL's logits s(x) + b_k)" if self.distance == "logit" else
                    "the softmax over them, which is no probability of a rank")
        warnings.warn(
            f"CounterfactualFairnessTerm {self.name!r} (distance={self.distance!r}) compares the model's "
            f"{outputs.shape[1]} outputs by {compared}, but "
            + ranks_said(y, outputs, task, SAYS_NOTHING if task is None else "each output is its own sigmoid decision (a "
                         "multi-label loss or `task` it holds)", "the batch's labels")
            + ": per-level logits, such as an ordinal head's cumulative logits (rank > k). Pass the expected "
            "rank with distance='logit', which penalises its change |E[rank | x] − E[rank | x_cf]|: `output=lambda out: "
            "torch.sigmoid(out).sum(1, keepdim=True)` (CORN's conditional logits: `torch.sigmoid(out).cumprod(1).sum(1, "
            "keepdim=True)`), or `output=` the rank classes' log-probabilities [N, K] (docs/your_model.md, 'Ordinal "
            "heads and survival models'); a one-vs-rest classifier (BCE on one-hot classes) says so by `output=lambda "
            "out: out`" + (f" (the lambdas take the model's whole output, in which the head `output={self.output!r}` is "
                           f"`out[{self.output!r}]`)" if self.output is not None and self.output != "logits" else "")
            + sigmoid_levels(outputs),
            UserWarning, stacklevel=outside_package())

    def _warn_continuous(self, y: Tensor | None, outputs: Tensor) -> bool:
        """Warn, and say so, where the outputs compared are a continuous distribution's moment (a Gaussian policy's
        action means, :func:`~lightning_causal.audits.task_warnings.continuous_moment` on the term's first pass) and
        the distance is none for them: a softmax or sigmoid (no probability of an action), or centred coordinates (a
        flip moving every coordinate alike gets 0). Not for a batch of integer class labels (a classifier's logits
        drawn from a ``Normal``)."""
        read = self.__dict__.get("_continuous")
        if read is None or isinstance(y, Tensor) and not (y.is_floating_point() or y.is_complex()):
            return False
        from lightning_causal.audits.task_warnings import continuous_guess

        width = int(outputs.shape[1]) if outputs.dim() == 2 else 1
        if self.distance == "logit" and width == 1:
            return False  # |mean_k(x) - mean_k(x_cf)|: what a coordinate's term should compare
        compared = (f"the model's {width} outputs centred (less their mean, as counterfactual logit pairing does)"
                    if self.distance == "logit" else "class probabilities (the softmax of the outputs, the sigmoid of one)")
        why = ("a flip that moves every coordinate alike gets penalty 0" if self.distance == "logit"
               else "the softmax (or sigmoid) of its coordinates is no probability")
        way = ("one term per coordinate, `output=lambda out: out.mean[:, [k]]` with distance='logit' (each with its own "
               "`name=`), which penalises |mean_k(x) − mean_k(x_cf)|" if width > 1 else "distance='logit', which penalises "
               "|mean(x) − mean(x_cf)|")
        warnings.warn(
            f"CounterfactualFairnessTerm {self.name!r} (distance={self.distance!r}) compares {compared}, but they are "
            f"{read}, a continuous distribution ({continuous_guess(y)}): {why}. Pass {way}", UserWarning,
            stacklevel=outside_package())
        return True

    def _class_signs(self, like: Tensor) -> Tensor:
        """``(−1, 1)`` in ``like``'s dtype and device (cached): ``logits @ s = z_1 − z_0``."""
        s = self._signs
        if s is None or s.dtype != like.dtype or s.device != like.device:
            s = self._signs = torch.tensor([-1.0, 1.0], dtype=like.dtype, device=like.device)
        return s

    def __repr__(self) -> str:
        return (f"CounterfactualFairnessTerm({self.counterfactual!r}, distance={self.distance!r}, "
                f"weight={self.weight!r})")
