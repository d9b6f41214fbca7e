"""The model as Captum calls it: :class:`CaptumForward`, and the inputs and targets it is given.

Captum passes ``additional_forward_args`` positionally and expands their per-sample tensors with the
inputs; :class:`CaptumForward` turns a Mapping's values back into keywords and returns the explained
tensor (``output=``). :func:`prepare_inputs` checks and clones the inputs and resolves ``target``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from lightning_causal._compat import OutOfMemoryError
from lightning_causal.causal.engine.ablation import check_baselines
from lightning_causal.causal.engine.batching import checked_pass, rows_per_pass, say_once_in_block
from lightning_causal.causal.engine.eager import eager_module
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.forward_args import ForwardArgs, map_tensors, tensor_leaves
from lightning_causal.causal.engine.linked_samples import check_rows_independent, name_failed_rows
from lightning_causal.causal.engine.log_probabilities import warn_saturated_log_probs
from lightning_causal.causal.engine.noise import warn_separate_noise
from lightning_causal.causal.engine.output_selection import (
    OutputSpec,
    check_output_spec,
    select_output,
)
from lightning_causal.causal.engine.pass_errors import dtype_hint, ended, width_hint
from lightning_causal.causal.engine.stacked_rows import StackedRowsError
from lightning_causal.causal.engine.state import resolve_target
from lightning_causal.causal.engine.token_ids import check_token_baselines, embedding_readers

__all__ = ["CaptumForward", "num_samples_of", "prepare_inputs", "whole_token_ids"]


def num_samples_of(inputs: Any) -> int | None:
    """The samples of the explained inputs (a tensor or a tuple of them: the first one's rows), for
    :class:`CaptumForward`'s ``num_samples``; ``None`` where there is no tensor to read.

    Args:
        inputs: the explained inputs.

    Examples:
        >>> num_samples_of(torch.zeros(5, 3)), num_samples_of((torch.zeros(2, 1), torch.zeros(2))), num_samples_of("x")
        (5, 2, None)
    """
    first = inputs[0] if isinstance(inputs, tuple) and inputs else inputs
    return first.shape[0] if isinstance(first, Tensor) and first.dim() > 0 else None


class CaptumForward(nn.Module):
    """The model as Captum calls it: ``forward(*inputs, *additional_args)``, returning the explained
    tensor ``[N, C]`` (``output=`` selection; outputs ``[N]`` become ``[N, 1]``).

    Captum passes ``additional_forward_args`` positionally and expands their per-sample tensors
    with the inputs (integration steps, noise samples, perturbations); keyword arguments (a
    Mapping) are therefore handed to Captum as trailing positional values and turned back into
    keywords here (:meth:`captum_args`), and the tensors nested in an argument (a named tuple's or a
    dict's per-sample fields) are handed to Captum one by one, so that it expands them too, and put
    back in place. A 1-D ``position_ids``/``cache_position`` keyword ``[T]``,
    shared by every row (:class:`~lightning_causal.causal.engine.forward_args.ForwardArgs`), is kept
    here and passed whole to every call: Captum would expand it with the inputs; so is, with ``num_samples`` given,
    every tensor whose first dimension is not the samples' (weights passed to ``torch.func.functional_call``, a
    codebook ``[K, D]``), which Captum would expand as well (and the model then refuse; a scalar it leaves as it is), and
    every tensor a probe's subset marks as passed whole (:func:`~lightning_causal.causal.engine.forward_args.mark_whole`).
    A tensor of one entry per sample flattened to ``[N*T]`` is passed whole too, as the causal estimators pass it (they
    gather by row only the tensors of first dimension ``N``). With ``input_dtype`` set, floating inputs reach the model
    in that dtype: Captum's float32 noise (``NoiseTunnel``, ``GradientShap``) promotes the rows of
    a bfloat16 or float16 model to float32, which the model refuses. Inside a stacked-rows block
    (:func:`~lightning_causal.causal.engine.stacked_rows.rows_alone_checked`, which ``attribute`` and the layer methods
    open around Captum's passes) each call of two rows or more runs its first and last rows and an inner one alone too,
    in the grad mode of the call (:func:`~lightning_causal.causal.engine.batching.checked_pass`; a row alone takes its
    row of the values Captum's hook puts in place of :attr:`replaced_site`'s output): a model that branches on a
    statistic of the rows Captum stacks is refused.

    Args:
        model: the model.
        output: which tensor of the model's return value is explained, as in
            :class:`~lightning_causal.causal.engine.forward.Forward`.
        additional_forward_args: extra forward arguments (tuple: positional; Mapping: keywords), as in
            :class:`~lightning_causal.causal.engine.forward.Forward`.
        num_inputs: the number of explained inputs Captum passes before the forward arguments.
        num_samples: the samples of the explained inputs: a tensor argument whose first dimension differs is no
            sample's and is passed whole to every call; ``None``: every tensor argument is handed to Captum.

    Examples:
        >>> f = CaptumForward(nn.Linear(3, 2), additional_forward_args=None)
        >>> f(torch.ones(4, 3)).shape, f.captum_args()
        (torch.Size([4, 2]), None)
        >>> g = CaptumForward(lambda x, w: x @ w, additional_forward_args=(torch.ones(3, 2),), num_samples=4)
        >>> g.captum_args(), g(torch.ones(8, 3)).shape  # the weight [3, 2] is no sample's: passed whole
        (None, torch.Size([8, 2]))
    """

    def __init__(self, model: nn.Module, *, output: OutputSpec = None, additional_forward_args: Any = None,
                 num_inputs: int = 1, num_samples: int | None = None) -> None:
        super().__init__()
        self.model = eager_module(model)
        self.output = check_output_spec(output)
        fargs = ForwardArgs(additional_forward_args)
        # a shared position_ids [T] stays out of Captum's arguments: Captum expands every tensor argument with the inputs
        self._shared = {k: v for k, v in fargs.kwargs.items() if fargs.is_shared(v)}
        keywords = {k: v for k, v in fargs.kwargs.items() if k not in self._shared}
        # Captum expands only the tensors it is given at the top: those nested in an argument (a named tuple's
        # per-sample field) are handed to it one by one and put back in place on each call
        self._template = (tuple(fargs.args), keywords)
        # a tensor that is no sample's (first dimension not the samples': functional_call's weights) is passed whole
        self._whole = {id(t) for t in tensor_leaves(self._template)
                       if fargs.is_whole(t) or (num_samples is not None and (t.dim() == 0 or t.shape[0] != num_samples))}
        self._values = tuple(t for t in tensor_leaves(self._template) if id(t) not in self._whole)
        self._num_inputs, self._given = num_inputs, additional_forward_args
        self.input_dtype: torch.dtype | None = None
        #: a module whose output Captum replaces with the values of the whole pass (LayerIntegratedGradients'
        #: interpolated layer values, LayerFeatureAblation's ablated copies): a row of the pass run alone takes its row
        self.replaced_site: nn.Module | None = None
        #: whether a row run alone by the stacked-rows check failed where its pass runs (a model that reads its batch)
        self.failed_alone = False

    def captum_args(self, differentiable: bool = False) -> tuple[Any, ...] | None:
        """What to pass as Captum's ``additional_forward_args`` (``None`` when there are none).

        ``differentiable``: floating point tensors as copies that require grad (no gradient is
        asked of them). DeepLift hooks the input of every nonlinearity for its gradient, and with
        the parameters frozen a branch that reads a forward argument only (the table beside an
        explained image, ``model(image, tab)``) holds no tensor that requires grad: Captum failed on
        "cannot register a hook on a tensor that doesn't require gradient".

        Args:
            differentiable: as above.
        """
        if not self._values:
            return None
        if not differentiable:
            return self._values
        return tuple(v.detach().clone().requires_grad_(True) if isinstance(v, Tensor) and v.is_floating_point() else v
                     for v in self._values)

    def forward(self, *args: Any) -> Tensor:
        first = args[0] if args else None
        rows = first.shape[0] if isinstance(first, Tensor) and first.dim() > 0 else 0
        if rows < 2:
            return self._call(args)
        # inside a rows_alone_checked block (attribute()'s, around Captum's passes): the pass's end rows and an inner
        # one run alone too, under the grad mode Captum runs the pass in (DeepLift's hooks want inputs that require grad)
        last: list[Tensor] = []

        def run(idx: Tensor) -> Tensor:
            last[:] = [self._call(args) if idx.numel() == rows else self._row_alone(args, int(idx[0]), rows)]
            return last[0]

        out = checked_pass(run, rows, _detached)
        if last and last[0] is not out:  # the check ran rows after the pass (noise, a kept state): Captum's hooks saw
            out = self._call(args)  # them last (the layer its gradient is taken of): the pass runs once more, last
        return out

    def _row_alone(self, args: tuple[Any, ...], i: int, rows: int) -> Tensor:
        """Row ``i`` of a pass of ``rows`` rows run alone: the row of Captum's arguments, and of the values Captum puts
        in place of :attr:`replaced_site`'s output (the whole pass's); a failure is recorded (:attr:`failed_alone`)."""
        handle = None
        if self.replaced_site is not None:  # registered after Captum's hook, so it runs after it and takes its values
            handle = self.replaced_site.register_forward_hook(lambda _m, _i, out: _output_row(out, i, rows))
        try:
            return self._call(_row_of(args, i, rows))
        except Exception:
            self.failed_alone = True
            raise
        finally:
            if handle is not None:
                handle.remove()

    def _call(self, args: tuple[Any, ...]) -> Tensor:
        k = self._num_inputs
        inputs, given = args[:k], iter(args[k:])
        positional, keywords = map_tensors(self._template, lambda t: t if id(t) in self._whole else next(given))
        keywords = {**keywords, **self._shared}
        if self.input_dtype is not None:
            inputs = tuple(t.to(self.input_dtype) if isinstance(t, Tensor) and t.is_floating_point() else t for t in inputs)
        out = select_output(self.model(*inputs, *positional, **keywords), self.output)
        return out.unsqueeze(1) if out.dim() == 1 else out

    @contextlib.contextmanager
    def coupled_rows_refused(self, x: Tensor, what: str) -> Iterator[None]:
        """Refuse, in the causal estimators' words, a model whose samples read each other's rows (a prototypical
        network's prototypes from its batch's first rows): an ``IndexError``, ``RuntimeError`` or ``ValueError`` of a
        pass inside the block (a trial pass of fewer rows than ``x``, one of Captum's; the layer methods' pass of one
        row through a ``BatchNorm1d(track_running_stats=False)``, torch's "Expected more than 1 value per channel"; not
        a ``ValueError`` of this package, a refusal that names its cause) becomes
        :func:`~lightning_causal.causal.engine.linked_samples.check_rows_independent`'s ``ValueError`` where that check
        of ``x`` refuses the model (:func:`~lightning_causal.causal.engine.linked_samples.name_failed_rows`), and so
        does a block whose passes ran where a row of them run alone by the stacked-rows check failed
        (:attr:`failed_alone`; Captum's passes of enough rows ran, each with the prototypes of its own first rows), and a
        stacked-rows refusal (``StackedRowsError``) where the samples of ``x`` as given already depend on their batch (a
        model retrieving over its batch, each sample attending to the others): that refusal says a branch the stacked
        rows cross together, which the clean samples' check cannot see, and its way out is one sample per call.
        Only a failure costs anything: a pass of ``x`` and one of two samples, without gradients (the engine's
        ``Forward`` they run on is built then: 0.4 ms of a digits CNN's, 5% of Saliency's call).

        Args:
            x: the explained inputs ``[N, ...]``.
            what: the method, as the refusal names it.
        """
        self.failed_alone = False
        try:
            yield
        except (IndexError, RuntimeError, ValueError) as err:  # ValueError: torch's or the model's, not a refusal of ours
            if isinstance(err, StackedRowsError):  # the samples as given already read each other's rows (a batch as the
                self._check_clean_rows(x, what)  # memory, attention across its rows): the clean samples' refusal names
                raise  # that, not a branch that stacked rows cross together
            if not (isinstance(err, OutOfMemoryError) or isinstance(err, ValueError) and _raised_here(err)):
                name_failed_rows(self._core(x), (x,), what, err)
            raise
        if self.failed_alone:
            self._check_clean_rows(x, what)

    def _check_clean_rows(self, x: Tensor, what: str) -> None:
        """:func:`~lightning_causal.causal.engine.linked_samples.check_rows_independent` of the samples ``x`` as given,
        without gradients (a pass of ``x`` and one of two samples), in :meth:`coupled_rows_refused`'s words ``what``."""
        core = self._core(x)
        with torch.no_grad():
            check_rows_independent(core, (x,), core(x), what)

    def _core(self, x: Tensor) -> Forward:
        """The engine's :class:`~lightning_causal.causal.engine.forward.Forward` of this model, output and arguments."""
        return Forward(self.model, output=self.output, additional_forward_args=self._given, num_samples=x.shape[0])

    def warn_noise(self, x: Tensor, what: str) -> None:
        """Warn when the model draws noise in eval mode: Captum compares passes that draw it separately
        (:func:`~lightning_causal.causal.engine.noise.warn_separate_noise`).

        Args:
            x: the explained inputs ``[N, ...]``.
            what: the method, for the warning.
        """
        args = ForwardArgs(self._values, x.shape[0])
        with torch.no_grad():
            warn_separate_noise(lambda *t, rows: self(*t, *args.take(rows)[0]), (x.detach(),), what)

    def token_baseline(self, x: Tensor, baseline: Any, padding: Tensor | None = None) -> Tensor:
        """The baseline of token ids ``x`` checked as the causal effects check it: shaped for ``x``
        (:func:`~lightning_causal.causal.engine.ablation.check_baselines`) and a token id that every embedding
        reading ``x`` can look up (:func:`~lightning_causal.causal.engine.token_ids.check_token_baselines`, on a clean
        pass; one beyond the vocabulary failed inside Captum's passes with ``IndexError``). Errors name ``baseline``.

        Args:
            x: token ids ``[N, ...]``.
            baseline: the baseline token id (a number or a tensor broadcastable to ``x``).
            padding: booleans broadcastable to ``x``, the positions that keep their tokens.
        """
        b = check_baselines((x,), baseline)[0]
        with torch.no_grad(), embedding_readers(self.model, (x,)) as readers:
            self(x, *(self.captum_args() or ()))
        check_token_baselines((x,), (b,), readers, padding)
        return b

    def rows_per_pass(self, x: Tensor, max_batch_size: int | None) -> int:
        """Rows per pass of the engine's cache-friendly chunk, measured with these arguments.

        Args:
            x: the explained inputs ``[N, ...]``.
            max_batch_size: rows per pass when given; ``None``: measured.
        """
        args = ForwardArgs(self._values, x.shape[0])
        return rows_per_pass(self, (x,), max_batch_size, forward=lambda *t, rows: self(*t, *args.take(rows)[0]))


def _row_of(args: tuple[Any, ...], i: int, rows: int) -> tuple[Any, ...]:
    """Row ``i`` of Captum's arguments of a pass of ``rows`` rows (every tensor of ``rows`` rows: Captum expands the
    per-sample arguments with the inputs), as a copy that requires grad where the pass's tensor does."""
    return tuple(a[i:i + 1].detach().clone().requires_grad_(a.requires_grad) if isinstance(a, Tensor) and a.dim() > 0
                 and a.shape[0] == rows else a for a in args)


def _raised_here(err: BaseException) -> bool:
    """Whether ``err`` was raised in this package (a refusal of ours, which names its cause), not in the model or torch."""
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and str(tb.tb_frame.f_globals.get("__name__", "")).startswith("lightning_causal.")


def _output_row(out: Any, i: int, rows: int) -> Any:
    """Row ``i`` of a module's output ``out`` that holds a pass of ``rows`` rows (a tensor, or a tuple of them), or
    ``None`` (the output as it is) where it holds none."""
    if isinstance(out, Tensor):
        return out[i:i + 1] if out.dim() > 0 and out.shape[0] == rows else None
    if isinstance(out, tuple) and any(isinstance(t, Tensor) and t.dim() > 0 and t.shape[0] == rows for t in out):
        return tuple(t[i:i + 1] if isinstance(t, Tensor) and t.dim() > 0 and t.shape[0] == rows else t for t in out)
    return None


def _detached(out: Tensor) -> Tensor:
    """A pass's values per row, for the stacked-rows check."""
    return out.detach()


def whole_token_ids(x: Tensor, value: Any) -> Any:
    """A baseline of whole finite floats (``3.0``) for token ids ``x``, in the ids' dtype, as a token id; any
    other value as given (checked where it is used: a float token id or a non-finite one is refused there).

    Examples:
        >>> whole_token_ids(torch.tensor([[1, 2]]), 3.0), whole_token_ids(torch.tensor([[1, 2]]), float("inf"))
        (tensor(3), inf)
    """
    if x.is_floating_point() or not isinstance(value, (float, Tensor)) or not torch.as_tensor(value).is_floating_point():
        return value
    t = torch.as_tensor(value)
    return t.to(x.dtype) if bool(torch.isfinite(t).all()) and bool((t == t.round()).all()) else value


def prepare_inputs(forward: CaptumForward, inputs: Tensor, target: int | Tensor | None, integer_ok: bool = False, *,
                   what: str | None = None) -> tuple[Tensor, Tensor]:
    """Clone ``inputs`` as a normal tensor and resolve ``target`` to ``[N]`` indices (token ids
    only for the input-layer methods: ``integer_ok``); with ``what`` (the method, as the warning names it), a model's
    own log-probabilities explained are warned of, as the causal estimators warn, once per
    :func:`~lightning_causal.causal.engine.batching.remembered_fit` block
    (:func:`~lightning_causal.causal.engine.log_probabilities.warn_saturated_log_probs`: their gradients and
    differences shrink towards 0 at confident samples)."""
    if isinstance(inputs, (tuple, list)) and inputs and all(isinstance(t, Tensor) for t in inputs):
        shapes = ", ".join(str(list(t.shape)) for t in inputs)
        raise ValueError(  # Captum takes a tuple of inputs; these functions explain one and say what to do with the others
            f"Expected argument `inputs` to be one tensor [N, ...] but got a {type(inputs).__name__} of {len(inputs)} tensors "
            f"({shapes}): the Captum baselines explain one input of the model; for model(x1, x2) explain x1 and pass the others "
            "as `additional_forward_args=(x2,)` (Captum's convention: they follow their rows and stay as they are, where "
            "Captum's tuple call moves every input toward its baseline together), one call per input to explain; "
            "lightning_causal.causal.input_effects takes several inputs")
    if not isinstance(inputs, Tensor) or inputs.dim() < 2 or inputs.shape[0] == 0:
        raise ValueError(
            f"Expected argument `inputs` to be a tensor [N, ...] with N >= 1 and a feature dimension but got "
            f"{type(inputs).__name__ if not isinstance(inputs, Tensor) else list(inputs.shape)}"
        )
    if not inputs.is_floating_point() and not integer_ok:
        raise TypeError(
            f"Expected argument `inputs` to be a floating point tensor but got dtype {inputs.dtype}; for token ids "
            "use a layer method on the embedding layer, e.g. CaptumBaseline(methods=('LayerIntegratedGradients',), "
            "input_layer='bert.embeddings.word_embeddings', baseline=<[MASK] id>)"
        )
    x = inputs.detach().clone()
    with torch.no_grad():
        try:
            out = forward(x, *(forward.captum_args() or ()))
        except RuntimeError as err:  # float32 inputs of a float64 model: say which argument and what to do, as the estimators do
            hint = dtype_hint(forward.model, (x,), err) or width_hint(forward.model, (x,), err)
            if hint is None:
                raise
            raise RuntimeError(f"{ended(err)} {hint}") from err
    idx = resolve_target(out, target)
    if what is not None:
        say_once_in_block("log_probabilities", lambda: warn_saturated_log_probs(forward.output, out, idx, what))
    return x, idx
