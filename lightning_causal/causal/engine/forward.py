"""How the core calls a model: :class:`Forward`, with its output selection and forward arguments.

Every estimator calls the model through a :class:`Forward`: ``Forward(model, output=...,
additional_forward_args=..., num_samples=N)(*inputs, rows=s)``. ``rows`` names the probe sample of
each row of ``inputs`` (rows are (intervention, sample) pairs of the row engine), so that forward
arguments with one entry per sample (an attention mask, a side tensor) travel with their rows.

``output`` picks the tensor to explain from what the model returns
(:mod:`lightning_causal.causal.engine.output_selection`):

- ``None`` (automatic): a tensor as it is; an object with a ``.logits`` tensor (Hugging Face
  ``ModelOutput``); a mapping with a ``"logits"`` entry. Anything else, a tuple included, is a
  ``TypeError`` that names ``output=``.
- a ``str``: a key of a mapping, else an attribute;
- an ``int``: an index (tuples, lists);
- a callable ``out -> Tensor``.

``additional_forward_args`` follows Captum (:mod:`lightning_causal.causal.engine.forward_args`): a
tuple is passed positionally after the inputs, any other single value as one positional argument; a
``Mapping`` (our addition) is passed as keyword arguments. Tensors whose first dimension is
``num_samples`` are gathered by ``rows``; every other value is passed unchanged.

A failed pass gets the cause and the way out added to its error
(:mod:`lightning_causal.causal.engine.pass_errors`); inputs the model modifies in place are written
back after each call (:func:`kept_inputs`, :func:`restore_inputs`).

Examples:
    >>> import torch
    >>> from torch import nn
    >>> class Masked(nn.Module):
    ...     def forward(self, x, mask=None):
    ...         return {"logits": x * mask}
    >>> f = Forward(Masked(), additional_forward_args={"mask": torch.tensor([[1.0], [0.0]])}, num_samples=2)
    >>> f(torch.ones(3, 1), rows=torch.tensor([1, 0, 1]))
    tensor([[0.],
            [1.],
            [0.]])
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lightning_causal._compat import OutOfMemoryError, with_note
from lightning_causal.causal.engine.eager import eager_module
from lightning_causal.causal.engine.forward_args import ForwardArgs
from lightning_causal.causal.engine.in_batch_scores import place_paired_hint
from lightning_causal.causal.engine.kept_attributes import (
    BATCH_STATISTICS_FIX,
    PASSES,
    batch_statistic_norms,
)
from lightning_causal.causal.engine.linked_samples import (
    GRAPH_HINT,
    POOLED_GRAPH_HINT,
    linked_arguments,
    linked_hint,
    pass_error_note,
)
from lightning_causal.causal.engine.output_selection import (
    ROW_WISE_OUTPUT,
    OutputSpec,
    check_not_a_loss,
    check_not_a_row,
    check_output_spec,
    check_time_major,
    select_output,
)
from lightning_causal.causal.engine.pass_errors import (
    check_not_meta,
    dtype_hint,
    ended,
    export_guard_hint,
    forward_gradient_hint,
    keyword_clash_hint,
    meta_tensor,
    sparse_layout_hint,
    stale_state_hint,
    width_hint,
)
from lightning_causal.causal.engine.per_sample_results import per_sample_mappings, results_way
from lightning_causal.causal.engine.quantized import refuse_dynamic_quantized

# ForwardArgs, the output selection and the pass errors live in their own modules; their names stay
# importable from here (ROW_WISE_OUTPUT too), the import path every estimator uses
__all__ = ["OutputSpec", "ForwardArgs", "Forward", "select_output", "check_output_spec", "check_not_meta", "dtype_hint",
           "keyword_clash_hint",
           "kept_inputs", "meta_tensor", "restore_inputs"]


def kept_inputs(values: list[Any]) -> list[tuple[Tensor, int, Tensor]]:
    """``(tensor, version, copy)`` of the tensors passed to a model call, so that
    :func:`restore_inputs` can undo what the model modified in place (``x.sub_(mean)``).

    Args:
        values: the arguments of the call; only strided, non-inference, non-meta tensors are kept.
    """
    kept = []
    for v in values:
        if isinstance(v, Tensor) and not v.is_inference() and v.layout == torch.strided and v.device.type != "meta":
            kept.append((v, v._version, v.detach().clone()))
    return kept


def restore_inputs(kept: list[tuple[Tensor, int, Tensor]]) -> bool:
    """Write back the tensors a model call modified in place (their version moved); whether any was.

    Args:
        kept: what :func:`kept_inputs` returned before the call.
    """
    moved = False
    for v, version, copy in kept:
        if v._version != version:
            moved = True
            with torch.no_grad():
                v.copy_(copy)
    return moved


def _one_row(inputs: tuple[Any, ...]) -> bool:
    """Whether a pass's first input is a tensor of one row."""
    return bool(inputs) and isinstance(inputs[0], Tensor) and inputs[0].dim() > 0 and inputs[0].shape[0] == 1


class BatchCoupledOutput(ValueError):
    """The refusal of an output whose width follows the batch (see :meth:`Forward._check_width`): a ``ValueError``
    that the probe check (:func:`~.sample_independence.check_samples_independent`) tells from other failures of a pass.
    """


class Forward:
    """``model`` called with forward arguments that follow their rows, returning the selected output.

    A compiled model (``torch.compile``) is called through its original module, so that hooks see
    every call (see :mod:`lightning_causal.causal.engine.eager`).
    A model with dynamically quantized layers (``quantize_dynamic``), whose rows depend on the
    others of their batch, is warned about once (see :mod:`lightning_causal.causal.engine.quantized`).
    An output whose columns follow its rows (as many columns as rows in a pass of another size than the first's, every
    pass before having had as many columns as rows: an in-batch score matrix ``u @ v.T``) is refused as batch-coupled,
    naming ``output=``; a head that grows between passes (class-incremental) to as many classes as a later pass's rows
    is not, once a pass had other columns than rows.

    Args:
        model: any ``nn.Module``.
        output: which tensor of the return value to explain (see the module docstring).
        additional_forward_args: extra arguments (see :class:`ForwardArgs`) or a ``ForwardArgs``.
        num_samples: ``N``, the number of probe samples.
        as_matrix: return a one-output model's ``[N]`` as ``[N, 1]`` (for estimators that read
            output columns: causal graphs, the layer map).

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> class Scaled(nn.Module):
        ...     def forward(self, x, scale):
        ...         return {"logits": x * scale}
        >>> forward = Forward(Scaled(), additional_forward_args=(torch.tensor([[1.0], [10.0]]),), num_samples=2)
        >>> x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
        >>> forward(x)  # the "logits" entry, sample i scaled by its own scale
        tensor([[ 1.,  2.],
                [30., 40.]])
        >>> forward(x[[1]], rows=torch.tensor([1]))  # a row of sample 1 takes sample 1's argument
        tensor([[30., 40.]])
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        output: OutputSpec = None,
        additional_forward_args: Any = None,
        num_samples: int | None = None,
        as_matrix: bool = False,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"Expected argument `model` to be a torch.nn.Module but got {type(model).__name__}")
        self.model = eager_module(model)
        #: a parameter or buffer on the meta device: a pass that fails on a meta tensor is refused naming it
        #: (:func:`check_not_meta`); a model using a meta skeleton through functional_call runs
        self.meta = meta_tensor(self.model)
        refuse_dynamic_quantized(self.model)  # its rows depend on their batch: the effects would hold quantization noise
        self.output = check_output_spec(output)
        self.as_matrix = as_matrix
        self.args = (
            additional_forward_args
            if isinstance(additional_forward_args, ForwardArgs)
            else ForwardArgs(additional_forward_args, num_samples)
        )
        #: Whether calls copy the inputs to give back what the model modifies in place: until a call
        #: shows it does not (``False``: versions are still checked, a copy per call costs up to a fifth
        #: of a small model's pass), for good once one shows it does (``True``).
        self.copies_inputs: bool | None = None
        #: ``(rows, columns)`` of the first pass whose output is a matrix (or more): a later pass of another number of
        #: rows whose columns follow its rows as these did is refused (:meth:`_check_width`)
        self.first_width: tuple[int, int] | None = None
        #: whether every such pass so far had as many columns as rows (``False`` for good once one had not: the width is
        #: then no batch's, and a grown head's classes equal to a later pass's rows are no reason to refuse)
        self.width_follows_rows = True

    def raw(self, *inputs: Tensor, rows: Tensor | None = None) -> Any:
        """The model's return value for ``inputs`` whose row ``r`` belongs to sample ``rows[r]``.

        A model that modifies its inputs (or a per-sample forward argument) in place
        (``x.sub_(mean).div_(std)``, ``x /= 255``) gets them back as they were after the call (also
        on errors): every pass reads the probe as given, and the caller's tensors are left unchanged.
        An ``IndexError`` or ``RuntimeError`` of a pass whose rows a forward argument may link (a
        graph's ``edge_index``: :func:`~lightning_causal.causal.engine.linked_samples.pass_error_note`)
        is raised again with the same type and that note appended (a subclass keeps itself, with the note).
        A ``ValueError`` of a pass of one row on a model with a BatchNorm built with ``track_running_stats=False``
        (torch's "Expected more than 1 value per channel", from a site check's trial pass of one sample) is raised
        again naming those layers: such a model normalises by the batch's statistics even in eval mode.

        Args:
            *inputs: the model's positional inputs, ``[R, ...]`` each.
            rows: ``[R]`` the sample of each row (the per-sample forward arguments are taken by it);
                ``None``: the rows are the samples, in order.
        """
        args, kwargs = self.args.take(rows)
        per_sample = self.args.taken_tensors(args, kwargs)
        # the inputs and the caller's per-sample arguments; with `rows` those are gathered rows, copies already
        # (even of N rows): not given back, but a change to them shows that the model writes to its arguments.
        # Not a large shared argument (a graph's adjacency), which a copy per call would cost
        values = [*inputs, *(per_sample if rows is None else ())]
        gathered = [(v, v._version) for v in per_sample if rows is not None and isinstance(v, Tensor) and not v.is_inference()]
        kept = kept_inputs(values) if self.copies_inputs is not False else []
        # inference tensors (made under torch.inference_mode()) track no version: nothing to compare
        versions = [(v, v._version) for v in values if isinstance(v, Tensor) and not v.is_inference()] if not kept else []
        grad_enabled = torch.is_grad_enabled()
        PASSES[0] += 1  # a keep around it may take a helper object it leaves unwritten for read-only
        try:
            return self.model(*inputs, *args, **kwargs)
        except Exception as err:
            if self.meta is not None and ("meta" in str(err) or "storage" in str(err)):  # "Tensor on device meta is not on ..."
                check_not_meta(self.model)
            clash = keyword_clash_hint(err, kwargs, len(inputs))
            if clash is not None:  # forward(image, tab) given the table as the input and {"image": ...}
                raise TypeError(f"{ended(err)} {clash}") from err
            note = (pass_error_note(self.args, int(inputs[0].shape[0]), model=self.model, num_inputs=len(inputs))
                    if isinstance(err, (IndexError, RuntimeError)) and inputs and isinstance(inputs[0], Tensor)
                    and inputs[0].dim() and not isinstance(err, OutOfMemoryError) else None)
            if note is not None:  # rows linked by a forward argument (a graph's edge_index): the model's error, its type kept
                if type(err) in (IndexError, RuntimeError):
                    raise type(err)(f"{ended(err)} {note}") from err
                with_note(err, note)
            guard = export_guard_hint(err)
            if guard is not None and type(err) in (AssertionError, RuntimeError):  # torch.export's guard on the batch size
                raise type(err)(f"{ended(err)} {guard}") from err  # (AssertionError; torch 2.3: RuntimeError)
            if isinstance(err, ValueError) and _one_row(inputs) and batch_statistic_norms(self.model):
                norms = batch_statistic_norms(self.model)  # a trial pass of one sample ("more than 1 value per channel")
                raise ValueError(
                    f"Expected the model to treat samples independently, but its normalisation layer(s) {norms[:3]} have "
                    "track_running_stats=False, so even in eval mode they normalise by the batch's statistics, and a pass "
                    f"of one sample fails ({err}). The audits run rows of many samples in one batch, whose statistics "
                    f"would mix them silently; {BATCH_STATISTICS_FIX}") from err
            if not isinstance(err, RuntimeError):
                raise
            hint = (dtype_hint(self.model, inputs, err) or width_hint(self.model, inputs, err)
                    or forward_gradient_hint(err, grad_enabled) or sparse_layout_hint(err)
                    or stale_state_hint(self.model, inputs, err))
            if hint is None:
                raise
            raise RuntimeError(f"{ended(err)} {hint}") from err
        finally:
            if any(v._version != version for v, version in gathered):
                self.copies_inputs = True  # later calls with the caller's own tensors copy them
            if kept:
                self.copies_inputs = restore_inputs(kept) or bool(self.copies_inputs)
            elif any(v._version != version for v, version in versions):
                self.copies_inputs = True
                raise RuntimeError(
                    "The model modified its input in place in a forward pass after earlier passes that left it "
                    "unchanged (a branch taken for some inputs only), so the tensor it was given could not be put "
                    "back. Clone the input in the model before changing it (`x = x.clone()`), or change it out of "
                    "place (`x = (x - mean) / std`)")

    def select(self, out: Any, rows: int | None = None) -> Tensor:
        """The explained tensor of a return value; ``rows``: the number of rows of the pass that
        gave it, checked against the tensor's (a callable ``output=`` must keep one row per row).

        Args:
            out: the model's return value.
            rows: as above; ``None``: not checked.

        Raises:
            TypeError: the explained tensor holds integers or booleans (an ``argmax``), not scores.
        """
        picked = select_output(out, self.output)
        if isinstance(picked, Tensor) and not (picked.is_floating_point() or picked.is_complex()):
            raise TypeError(
                f"Expected the explained output to hold real-valued scores (logits, probabilities, Q-values, a regression's "
                f"values) but got {picked.dtype} {list(picked.shape)}: class indices or actions (an argmax), which no "
                "intervention changes by degrees. Have forward return the scores the decision is taken from, or pass "
                "`output=` selecting them from what it returns")
        if rows is not None and (picked.dim() == 0 or picked.shape[0] != rows):
            raise ValueError(
                f"Expected the explained output to have one row per input row ({rows}) but got shape "
                f"{tuple(picked.shape)}. {ROW_WISE_OUTPUT}")
        return picked.unsqueeze(1) if self.as_matrix and picked.dim() == 1 else picked

    def __call__(self, *inputs: Tensor, rows: Tensor | None = None) -> Tensor:
        return self.checked(self.raw(*inputs, rows=rows), *inputs)

    def checked(self, raw: Any, *inputs: Tensor) -> Tensor:
        """The explained tensor of ``raw``, the model's return value on ``inputs`` (:meth:`raw`), with the row checks
        of a call: one row per input row, else a refusal naming the cause (a squeezed batch of one, a 1-D input read as
        one sample, linked rows, an in-batch score matrix); a caller that needs the return value as well takes it from
        :meth:`raw` and this.

        Args:
            raw: the model's return value on ``inputs``.
            inputs: the pass's positional inputs, the first of which counts its rows.

        Raises:
            ValueError: the explained tensor has not one row per input row.
        """
        picked = self.select(raw)
        n = inputs[0].shape[0] if inputs and isinstance(inputs[0], Tensor) and inputs[0].dim() else None
        if n is not None and (picked.dim() == 0 or picked.shape[0] != n):
            # output=0 meant for a tuple (logits, features), given a model that returns one tensor (in eval mode only?)
            check_not_a_row(raw, picked, self.output, n)
            check_not_a_loss(raw, picked, self.output, n)  # (loss, logits) of a model given the labels: output=0
            check_time_major(raw, picked, n)  # [T, N, C] log-probs for F.ctc_loss: out.mean(1) would read T samples
            linked = linked_arguments(self.args, model=self.model, num_inputs=len(inputs))
            hint = linked_hint(self.model, inputs)  # the graph hint, or flat indices of an nn.EmbeddingBag with offsets
            x = inputs[0]
            if not linked and x.dim() == 1 and x.is_floating_point():  # one sample without its batch dimension
                raise ValueError(
                    f"Expected the explained output to have one row per input row ({n}) but got shape {tuple(picked.shape)}: "
                    f"argument `inputs` is 1-D [{n}], read as {n} samples of one value, and the model took it for one sample "
                    f"(nn.Linear reads a vector as one row); for one sample of {n} features pass x[None] ([1, {n}]), for {n} "
                    "samples of one feature x[:, None]")
            if not linked and n == 1 and picked.dim() <= 1:  # [C] or () from a one-row pass: forward squeezed the batch away
                raise ValueError(
                    f"Expected the explained output to have one row per input row (1) but a pass of one row gave shape "
                    f"{tuple(picked.shape)}: the model drops the batch dimension of a batch of one sample (`x.squeeze()` or "
                    "`out.squeeze()` in forward removes every dimension of size 1, the batch's too); the estimators run "
                    "passes of any number of rows, one included: squeeze a named dimension (`x.squeeze(-1)`, "
                    "`out.flatten(1)`) instead")
            paired = place_paired_hint(self, inputs, raw)  # s.diagonal() of [n, C] against C candidates passed whole
            if not paired and not linked and per_sample_mappings(raw):  # torch.cat of a detector's per-image scores
                raise ValueError(f"Expected the explained output to have one row per input row ({n}) but got shape "
                                 f"{tuple(picked.shape)}: {results_way(raw)}")
            raise ValueError(
                f"Expected the explained output to have one row per input row ({n}) but got shape {tuple(picked.shape)}"
                + (f". {paired}" if paired else "; ")
                + (f"forward arguments link the input rows ({'; '.join(linked)}): the rows are no samples"
                   + (f". {POOLED_GRAPH_HINT}" if hint == GRAPH_HINT and 0 < picked.shape[0] < n else f". {hint}") if linked else
                   "pass `output=` a callable out -> [N, ...] (e.g. `output=lambda out: out.view(-1, T, C).mean(1)` for "
                   "per-position scores flattened to [N * T, C])")
            )
        if n is not None and picked.dim() >= 2:
            self._check_width(n, picked.shape[1])
        return picked

    def _check_width(self, n: int, width: int) -> None:
        """Refuse an output whose width follows the batch: a pass of ``n`` rows with ``n`` columns where the first pass,
        of another number of rows, and every pass since, had as many columns as rows (an in-batch score matrix
        ``u @ v.T``); a pass with other columns than rows (a fixed head, grown later or not) ends the check."""
        if self.first_width is None:
            self.first_width = (n, width)
        self.width_follows_rows = self.width_follows_rows and width == n
        n0, w0 = self.first_width
        if n != n0 and self.width_follows_rows:
            raise BatchCoupledOutput(
                f"Expected the explained output to have the same columns in every pass, but a pass of {n0} rows gave "
                f"{w0} columns and one of {n} rows {n} columns: the output's width follows the batch (batch-coupled: an in-batch "
                "score matrix such as `u @ v.T`, row i scoring every item of its batch), so a column means another item "
                "in every pass the estimators run (passes of any number of rows, one included) and no row's effects can "
                "be read. Explain a per-sample output instead: pass `output=` a callable giving each row its own score "
                "(e.g. `output=lambda s: s.diagonal()[:, None]`, each row's own item), or score against a fixed set of "
                "candidates (`u @ item_table.T`; a two-tower model given the other tower's inputs as forward arguments: "
                "pass them whole, `additional_forward_args=mark_whole((items,), [0])` (`from "
                "lightning_causal.causal import mark_whole`), with `output=lambda s: s.log_softmax(1)` "
                "and each row's own candidate as `target=` (e.g. `target=torch.arange(N)`; `target=None` would explain "
                "each row's best-scoring candidate), docs/recipes.md, 'Ranking and retrieval'); a CLIP-like image-text "
                "model's per-sample outputs are its zero-shot classifier (the image embedding against class prompts' "
                "embeddings kept as a buffer, [N, C]) and its image embedding (a linear probe on it), docs/recipes.md, "
                "'Auditing a CLIP-like dual encoder'")

    def rows_for(self, count: int, device: torch.device) -> Tensor:
        """Sample indices of the first ``count`` rows of a trial pass.

        Args:
            count: the number of rows of the trial pass.
            device: the device of the indices.
        """
        n = self.args.num_samples or count
        return torch.arange(count, device=device) % max(1, n)
