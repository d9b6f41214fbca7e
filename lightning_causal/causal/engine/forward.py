"""How the core calls a model: output selection and additional forward arguments.

Every estimator calls the model through a :class:`Forward`: ``Forward(model, output=...,
additional_forward_args=..., num_samples=N)(*inputs, rows=s)``. ``rows`` names the probe sample of
each row of ``inputs`` (rows are (intervention, sample) pairs of the row engine), so that forward
arguments with one entry per sample (an attention mask, a side tensor) travel with their rows.

``output`` picks the tensor to explain from what the model returns:

- ``None`` (automatic): a tensor as it is; an object with a ``.logits`` tensor (Hugging Face
  ``ModelOutput``); a mapping with a ``"logits"`` entry. Anything else, a tuple included, is a
  ``TypeError`` that names ``output=``.
- a ``str``: a key of a mapping, else an attribute;
- an ``int``: an index (tuples, lists);
- a callable ``out -> Tensor``.

``additional_forward_args`` follows Captum: a tuple is passed positionally after the inputs, any
other single value as one positional argument; a ``Mapping`` (our addition) is passed as keyword
arguments. Tensors whose first dimension is ``num_samples`` are gathered by ``rows``; every other
value is passed unchanged.

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

import re
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.eager import eager_module
from lightning_causal.causal.engine.linked_samples import (
    GRAPH_HINT,
    linked_arguments,
    pass_error_note,
)
from lightning_causal.causal.engine.live_values import rows_of
from lightning_causal.causal.engine.quantized import warn_dynamic_quantized

__all__ = ["OutputSpec", "ForwardArgs", "Forward", "select_output", "check_output_spec", "check_not_meta", "dtype_hint",
           "keyword_clash_hint",
           "kept_inputs", "meta_tensor", "restore_inputs"]

OutputSpec = None | str | int | Callable[[Any], Tensor]


def check_output_spec(output: Any, error: type[Exception] = TypeError) -> OutputSpec:
    """Validate ``output=`` without a model: ``None``, a ``str``, an ``int`` or a callable."""
    if output is None or callable(output) or isinstance(output, str) and output:
        return output
    if isinstance(output, int) and not isinstance(output, bool):
        return output
    raise error(
        f"Expected argument `output` to be None, a key or attribute name (str), an index (int) or a callable "
        f"out -> Tensor but got {output!r}"
    )


def _describe(out: Any) -> str:
    if isinstance(out, Mapping):
        return f"{type(out).__name__} with keys {list(out)[:8]}"
    if isinstance(out, (tuple, list)):
        return f"{type(out).__name__} of {len(out)} items ({', '.join(type(o).__name__ for o in out[:4])})"
    return type(out).__name__


def select_output(out: Any, output: OutputSpec = None) -> Tensor:
    """The tensor that ``output`` selects from the model's return value ``out``.

    Examples:
        >>> import torch
        >>> select_output({"logits": torch.ones(1, 2), "loss": torch.zeros(())})
        tensor([[1., 1.]])
        >>> select_output((torch.zeros(1), torch.ones(1, 2)), output=1)
        tensor([[1., 1.]])
    """
    if output is None:
        if isinstance(out, Tensor):
            return out
        if isinstance(out, Mapping) and isinstance(out.get("logits"), Tensor):
            return out["logits"]
        if not isinstance(out, Mapping) and isinstance(getattr(out, "logits", None), Tensor):
            return out.logits
        raise TypeError(
            f"Expected the model to return a tensor, an object with a `.logits` tensor or a mapping with 'logits' "
            f"but got {_describe(out)}; pass `output=` (a key, an index or a callable out -> Tensor) to choose the tensor"
        )
    try:
        if callable(output):
            try:
                picked = output(out)
            except RuntimeError as err:  # a shape mismatch: mostly a tensor of the probe's samples read by the callable
                if type(err) is not RuntimeError:  # torch.OutOfMemoryError and the like keep their type (batch halving)
                    raise
                raise RuntimeError(f"{err}. {ROW_WISE_OUTPUT}") from err
        elif isinstance(output, str):
            picked = out[output] if isinstance(out, Mapping) else getattr(out, output)
        else:
            picked = out[output]
    except (KeyError, IndexError, AttributeError, TypeError) as err:
        # an IndexError of a callable: mostly an index of one entry per probe sample (a position per sentence)
        hint = f". {ROW_WISE_OUTPUT}" if callable(output) and isinstance(err, IndexError) else ""
        raise TypeError(f"Expected argument `output={output!r}` to select a tensor from {_describe(out)} but it failed: {err!r}{hint}") from err
    if not isinstance(picked, Tensor):
        raise TypeError(f"Expected argument `output={output!r}` to select a tensor from {_describe(out)} but got {type(picked).__name__}")
    if callable(output) and picked.dim() and picked.shape[0] > 1 and _one_row(out):
        # a pass of one row whose selected output has several: the callable broadcast the row against a tensor of
        # its own (one entry per probe sample), so every row but one would be another sample's number
        raise ValueError(
            f"Expected the explained output to have one row per input row (1) but `output=` returned shape "
            f"{tuple(picked.shape)} for a pass of one row. {ROW_WISE_OUTPUT}")
    return picked


ROW_WISE_OUTPUT = (
    "A callable `output=` is called on the model's output for batches of rows that the estimators choose (any number "
    "of rows, the samples in any order, repeated, intervened): it must compute each row from that row alone. A tensor "
    "of one entry per probe sample that it reads (a mask per image, a position per sample) cannot follow the rows: "
    "pass it to the model as a forward argument instead, whose rows follow their samples (a wrapper module with "
    "`forward(self, x, masks)` returning the region's mean score, and `additional_forward_args={'masks': masks}`)")


def _one_row(out: Any) -> bool:
    """Whether the model's return value holds one row: the tensor it is, or every tensor of it (of
    one dimension or more), has one entry on dimension 0."""
    if isinstance(out, Tensor):
        values: Any = (out,)
    elif isinstance(out, Mapping):
        values = out.values()
    else:
        values = out if isinstance(out, (tuple, list)) else (getattr(out, "logits", None),)
    sizes = {int(v.shape[0]) for v in values if isinstance(v, Tensor) and v.dim()}
    return sizes == {1}


def _check_not_listed_per_sample(name: str, value: Any, num_samples: int | None) -> None:
    """Refuse one integer per sample held in a list, tuple or NumPy array (``lengths=[5, 3, ...]``):
    only tensors travel with their rows, so the model would get all ``N`` values beside a batch of
    other rows (an error deep in the model, or silently the wrong samples' values)."""
    if num_samples is None or num_samples < 2 or isinstance(value, (str, bytes, Tensor)):
        return
    if (type(value).__module__ == "numpy" and getattr(value, "ndim", 0) > 0 and len(value) == num_samples
            and value.dtype.kind in "iu"):
        kind = f"a NumPy array of shape {list(value.shape)}"
    elif (isinstance(value, (list, tuple)) and len(value) == num_samples
          and all((isinstance(v, int) and not isinstance(v, bool))
                  or (isinstance(v, Tensor) and v.dim() == 0 and not v.is_floating_point() and v.dtype != torch.bool)
                  for v in value)):
        kind = f"a {type(value).__name__} of {num_samples} integers"
    else:  # constants (a list of floats, strings, flags) pass as they are
        return
    raise ValueError(
        f"Expected {name} to be a tensor but got {kind}, one per sample (e.g. sequence lengths): "
        f"only tensors whose first dimension is the number of samples ({num_samples}) travel with their samples when "
        "the estimators batch rows of several samples; pass it as a tensor, e.g. "
        "`additional_forward_args={'lengths': torch.tensor(lengths)}`")


class ForwardArgs:
    """Additional forward arguments, with the tensors of one entry per sample gathered by row.

    Args:
        additional_forward_args: ``None``, a tuple (positional), a ``Mapping`` (keywords) or one value.
        num_samples: ``N``; tensors whose first dimension is ``N`` travel with their rows.

    Examples:
        >>> import torch
        >>> fa = ForwardArgs((torch.tensor([10, 20]), "keep"), num_samples=2)
        >>> fa.take(torch.tensor([1, 1, 0]))
        ((tensor([20, 20, 10]), 'keep'), {})
    """

    def __init__(self, additional_forward_args: Any = None, num_samples: int | None = None) -> None:
        value = additional_forward_args
        if value is None:
            self.args, self.kwargs = (), {}
        elif isinstance(value, Mapping):
            if not all(isinstance(k, str) for k in value):
                raise TypeError(f"Expected the keys of `additional_forward_args` to be argument names (str) but got {list(value)}")
            self.args, self.kwargs = (), dict(value)
        elif isinstance(value, tuple):
            self.args, self.kwargs = value, {}
        else:
            self.args, self.kwargs = (value,), {}
        self.num_samples = num_samples
        named = [*((f"the positional forward argument {i}", v) for i, v in enumerate(self.args)),
                 *((f"the forward argument {k!r}", v) for k, v in self.kwargs.items())]
        for name, v in named:
            _check_not_listed_per_sample(name, v, num_samples)

    def __bool__(self) -> bool:
        return bool(self.args or self.kwargs)

    def _per_sample(self, v: Any) -> bool:
        return isinstance(v, Tensor) and v.dim() > 0 and self.num_samples is not None and v.shape[0] == self.num_samples

    def take(self, rows: Tensor | None) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Positional and keyword arguments for rows of sample indices ``rows`` (``None``: all samples)."""
        if rows is None:
            return self.args, self.kwargs

        def pick(v: Any) -> Any:
            return rows_of(v, rows) if self._per_sample(v) else v

        return tuple(pick(a) for a in self.args), {k: pick(v) for k, v in self.kwargs.items()}

    def tensors(self) -> list[Tensor]:
        """The per-sample tensors (they travel with rows)."""
        return [v for v in (*self.args, *self.kwargs.values()) if self._per_sample(v)]

    def subset(self, rows: Tensor) -> ForwardArgs:
        """The arguments of the samples ``rows`` (a smaller probe)."""
        args, kwargs = self.take(rows)
        out = ForwardArgs(None, len(rows))
        out.args, out.kwargs = args, kwargs
        return out


def meta_tensor(model: nn.Module) -> str | None:
    """The name of the first parameter or buffer of ``model`` on the ``meta`` device, or ``None``."""
    named = (*model.named_parameters(), *model.named_buffers())
    return next((n for n, t in named if t.is_meta), None)


def check_not_meta(model: nn.Module) -> None:
    """Refuse a model whose parameters or buffers are on the ``meta`` device (shapes without data):
    its forward pass fails deep inside with a device error that names neither the model nor the fix.
    :class:`Forward` raises it when a pass of such a model fails on a meta tensor: a model that holds
    a meta module only as the skeleton of ``torch.func.functional_call`` (the model-ensembling recipe,
    ``stack_module_state`` and ``vmap``) runs, and is not refused.

    Examples:
        >>> check_not_meta(nn.Linear(2, 1, device="meta"))
        Traceback (most recent call last):
        ...
        ValueError: Expected argument `model` to hold its weights in memory but 'weight' is on the meta device ...
    """
    name = meta_tensor(model)
    if name is not None:
        raise ValueError(
            f"Expected argument `model` to hold its weights in memory but {name!r} is on the meta device (a shape "
            "without data); materialise the model first, e.g. `model.to_empty(device='cpu')` then `model.load_state_dict(...)`"
        )


_DTYPE_ERROR = re.compile(r"same dtype|should be the same|expected scalar type|Input type \(", re.IGNORECASE)


def keyword_clash_hint(err: BaseException, keywords: Mapping[str, Any], num_inputs: int) -> str | None:
    """The way out of Python's "got multiple values for argument 'image'" when a keyword forward
    argument names a parameter that the inputs, passed first and positionally, fill already: the
    table of ``forward(self, image, tab)`` explained with ``{"image": image}`` lands in ``image``.
    ``None`` for any other error.

    Examples:
        >>> err = TypeError("Net.forward() got multiple values for argument 'image'")
        >>> print(keyword_clash_hint(err, {"image": None}, 1))  # doctest: +ELLIPSIS
        `additional_forward_args` passes `image` as a keyword, but the 1 explained input is passed first, ...
    """
    found = re.search(r"got multiple values for argument '(\w+)'", str(err)) if isinstance(err, TypeError) else None
    if found is None or found.group(1) not in keywords:
        return None
    name = found.group(1)
    return (f"`additional_forward_args` passes `{name}` as a keyword, but the {num_inputs} explained input"
            f"{'s are' if num_inputs > 1 else ' is'} passed first, positionally, and {'fill' if num_inputs > 1 else 'fills'} "
            f"`{name}`: explain an input that "
            "forward takes first (the explained input is forward's first parameter; a wrapper module can reorder, "
            f"`forward(self, other, {name}): return model({name}, other)`), or pass every input as a tuple to the "
            "estimators of lightning_causal.causal, which take several inputs")


def dtype_hint(model: nn.Module, inputs: tuple[Any, ...], err: BaseException) -> str | None:
    """What to do about a dtype error of the model's forward pass (torch's message names neither
    the argument nor the dtypes involved), or ``None`` when ``err`` is not one.

    Examples:
        >>> err = RuntimeError("mat1 and mat2 must have the same dtype, but got Double and Float")
        >>> print(dtype_hint(nn.Linear(2, 1), (torch.zeros(1, 2, dtype=torch.float64),), err))
        Argument `inputs` is torch.float64 but the model's parameters are torch.float32: pass inputs of the model's dtype (`x.to(torch.float32)`) or convert the model (`model.to(torch.float64)`)
    """
    if not _DTYPE_ERROR.search(str(err)):
        return None
    params = {p.dtype for p in model.parameters() if p.is_floating_point()}
    given = {x.dtype for x in inputs if isinstance(x, Tensor) and x.is_floating_point()}
    if len(params) > 1:
        return (f"The model's parameters have several dtypes ({sorted(map(str, params))}): convert the model to one "
                "dtype (`model.to(torch.float32)`) or cast inside its forward")
    if len(params) == 1 and given and given != params:
        (p,), x = params, sorted(map(str, given))[0]
        return (f"Argument `inputs` is {x} but the model's parameters are {p}: pass inputs of the model's dtype "
                f"(`x.to({p})`) or convert the model (`model.to({x})`)")
    integer = sorted({str(x.dtype) for x in inputs if isinstance(x, Tensor) and not x.is_floating_point() and not x.is_complex()})
    # a model with an embedding reads its token ids there: the dtype fault lies elsewhere (a forward argument), not in them
    reads_ids = any(isinstance(m, (nn.Embedding, nn.EmbeddingBag)) for m in model.modules())
    if len(params) == 1 and integer and not given and not reads_ids:  # else the caller's generic advice (forward's parameters) misleads
        (p,) = params
        return (f"Argument `inputs` is {integer[0]} (integer: category codes or token ids) but the model's parameters are {p}: "
                f"cast inside the model's forward (`x.to({p})`) for features, or read token ids with an nn.Embedding")
    return None


def kept_inputs(values: list[Any]) -> list[tuple[Tensor, int, Tensor]]:
    """``(tensor, version, copy)`` of the tensors passed to a model call, so that
    :func:`restore_inputs` can undo what the model modified in place (``x.sub_(mean)``)."""
    kept = []
    for v in values:
        if isinstance(v, Tensor) and not v.is_inference() and v.layout == torch.strided and v.device.type != "meta":
            kept.append((v, v._version, v.detach().clone()))
    return kept


def restore_inputs(kept: list[tuple[Tensor, int, Tensor]]) -> bool:
    """Write back the tensors a model call modified in place (their version moved); whether any was."""
    moved = False
    for v, version, copy in kept:
        if v._version != version:
            moved = True
            with torch.no_grad():
                v.copy_(copy)
    return moved


class Forward:
    """``model`` called with forward arguments that follow their rows, returning the selected output.

    A compiled model (``torch.compile``) is called through its original module, so that hooks see
    every call (see :mod:`lightning_causal.causal.engine.eager`).
    A model with dynamically quantized layers (``quantize_dynamic``), whose rows depend on the
    others of their batch, is warned about once (see :mod:`lightning_causal.causal.engine.quantized`).

    Args:
        model: any ``nn.Module``.
        output: which tensor of the return value to explain (see the module docstring).
        additional_forward_args: extra arguments (see :class:`ForwardArgs`) or a ``ForwardArgs``.
        num_samples: ``N``, the number of probe samples.
        as_matrix: return a one-output model's ``[N]`` as ``[N, 1]`` (for estimators that read
            output columns: causal graphs, the layer map).
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
        warn_dynamic_quantized(self.model)  # its rows depend on their batch: the effects hold quantization noise
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

    def raw(self, *inputs: Tensor, rows: Tensor | None = None) -> Any:
        """The model's return value for ``inputs`` whose row ``r`` belongs to sample ``rows[r]``.

        A model that modifies its inputs (or a per-sample forward argument) in place
        (``x.sub_(mean).div_(std)``, ``x /= 255``) gets them back as they were after the call (also
        on errors): every pass reads the probe as given, and the caller's tensors are left unchanged.
        An ``IndexError`` or ``RuntimeError`` of a pass whose rows a forward argument may link (a
        graph's ``edge_index``: :func:`~lightning_causal.causal.engine.linked_samples.pass_error_note`)
        is raised again with the same type and that note appended (a subclass keeps itself, with the note).
        """
        args, kwargs = self.args.take(rows)
        sources = (*self.args.args, *self.args.kwargs.values())
        per_sample = [v for v, src in zip((*args, *kwargs.values()), sources) if self.args._per_sample(src)]
        # the inputs and the caller's per-sample arguments; with `rows` those are gathered rows, copies already
        # (even of N rows): not given back, but a change to them shows that the model writes to its arguments.
        # Not a large shared argument (a graph's adjacency), which a copy per call would cost
        values = [*inputs, *(per_sample if rows is None else ())]
        gathered = [(v, v._version) for v in per_sample if rows is not None and isinstance(v, Tensor) and not v.is_inference()]
        kept = kept_inputs(values) if self.copies_inputs is not False else []
        # inference tensors (made under torch.inference_mode()) track no version: nothing to compare
        versions = [(v, v._version) for v in values if isinstance(v, Tensor) and not v.is_inference()] if not kept else []
        try:
            return self.model(*inputs, *args, **kwargs)
        except Exception as err:
            if self.meta is not None and ("meta" in str(err) or "storage" in str(err)):  # "Tensor on device meta is not on ..."
                check_not_meta(self.model)
            clash = keyword_clash_hint(err, kwargs, len(inputs))
            if clash is not None:  # forward(image, tab) given the table as the input and {"image": ...}
                raise TypeError(f"{err}. {clash}") from err
            note = (pass_error_note(self.args, int(inputs[0].shape[0]), model=self.model, num_inputs=len(inputs))
                    if isinstance(err, (IndexError, RuntimeError)) and inputs and isinstance(inputs[0], Tensor)
                    and inputs[0].dim() and not isinstance(err, torch.OutOfMemoryError) else None)
            if note is not None:  # rows linked by a forward argument (a graph's edge_index): the model's error, its type kept
                if type(err) in (IndexError, RuntimeError):
                    raise type(err)(f"{err}. {note}") from err
                err.add_note(note)
            if not isinstance(err, RuntimeError):
                raise
            hint = dtype_hint(self.model, inputs, err)
            if hint is None:
                raise
            raise RuntimeError(f"{err}. {hint}") from err
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
        gave it, checked against the tensor's (a callable ``output=`` must keep one row per row)."""
        picked = select_output(out, self.output)
        if rows is not None and (picked.dim() == 0 or picked.shape[0] != rows):
            raise ValueError(
                f"Expected the explained output to have one row per input row ({rows}) but got shape "
                f"{tuple(picked.shape)}. {ROW_WISE_OUTPUT}")
        return picked.unsqueeze(1) if self.as_matrix and picked.dim() == 1 else picked

    def __call__(self, *inputs: Tensor, rows: Tensor | None = None) -> Tensor:
        raw = self.raw(*inputs, rows=rows)
        picked = self.select(raw)
        n = inputs[0].shape[0] if inputs and isinstance(inputs[0], Tensor) and inputs[0].dim() else None
        if n is not None and (picked.dim() == 0 or picked.shape[0] != n):
            if isinstance(raw, Tensor) and isinstance(self.output, int) and not isinstance(self.output, bool):
                raise ValueError(  # output=0 meant for a tuple (logits, features), given a model that returns one tensor
                    f"Expected the explained output to have one row per input row ({n}) but `output={self.output}` indexed "
                    f"the model's output, itself a tensor of shape {tuple(raw.shape)}, and took its row {self.output} "
                    f"(shape {tuple(picked.shape)}); a model that returns one tensor needs no `output=` (a column: "
                    f"`output=lambda out: out[:, {self.output}:{self.output + 1}]`)"
                )
            linked = linked_arguments(self.args, model=self.model, num_inputs=len(inputs))
            raise ValueError(
                f"Expected the explained output to have one row per input row ({n}) but got shape {tuple(picked.shape)}; "
                + (f"forward arguments link the input rows ({'; '.join(linked)}): the rows are no samples (nodes of "
                   "graphs pooled per graph?). " + GRAPH_HINT if linked else
                   "pass `output=` a callable out -> [N, ...] (e.g. `output=lambda out: out.view(-1, T, C).mean(1)` for "
                   "per-position scores flattened to [N * T, C])")
            )
        return picked

    def rows_for(self, count: int, device: torch.device) -> Tensor:
        """Sample indices of the first ``count`` rows of a trial pass."""
        n = self.args.num_samples or count
        return torch.arange(count, device=device) % max(1, n)
