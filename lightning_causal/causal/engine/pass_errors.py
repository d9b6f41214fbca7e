"""What a failed forward pass of the model gets added to its error: the cause and the way out.

A model with weights on the ``meta`` device (:func:`meta_tensor`, :func:`check_not_meta`), a keyword
forward argument that names a parameter the inputs fill already (:func:`keyword_clash_hint`), and a
dtype mismatch between the inputs and the model's parameters (:func:`dtype_hint`), inputs of
another width than the model's first ``nn.Linear`` (:func:`width_hint`), and a ``torch.export``'ed
model exported for one batch size (:func:`export_guard_hint`), whose torch errors name
neither the argument nor the fix, a forward that takes gradients itself (:func:`forward_gradient_hint`), a
forward that needs a sparse tensor where the estimators pass dense rows (:func:`sparse_layout_hint`), and a state kept
from an earlier call, sized by another batch (:func:`stale_state_hint`).
:class:`~lightning_causal.causal.engine.forward.Forward`
applies them to every pass that fails.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

__all__ = ["check_not_meta", "dtype_hint", "ended", "export_guard_hint", "forward_gradient_hint", "is_dtype_error", "keyword_clash_hint",
           "meta_tensor", "sparse_layout_hint", "stale_state_hint", "width_hint"]


def ended(err: BaseException) -> str:
    """A failed pass's message closed by one full stop, for a hint to follow (torch's own often ends with one:
    "... for tensor number 1 in the list.", which ``f"{err}. {hint}"`` doubled).

    Examples:
        >>> ended(RuntimeError("Sizes of tensors must match for tensor number 1 in the list.")), ended(ValueError("bad"))
        ('Sizes of tensors must match for tensor number 1 in the list.', 'bad.')
    """
    return f"{str(err).rstrip('.')}."


def meta_tensor(model: nn.Module) -> str | None:
    """The name of the first parameter or buffer of ``model`` on the ``meta`` device, or ``None``.

    Args:
        model: the model.
    """
    named = (*model.named_parameters(), *model.named_buffers())
    return next((n for n, t in named if t.is_meta), None)


def check_not_meta(model: nn.Module) -> None:
    """Refuse a model whose parameters or buffers are on the ``meta`` device (shapes without data):
    its forward pass fails deep inside with a device error that names neither the model nor the fix.
    :class:`~lightning_causal.causal.engine.forward.Forward` raises it when a pass of such a model
    fails on a meta tensor: a model that holds a meta module only as the skeleton of
    ``torch.func.functional_call`` (the model-ensembling recipe, ``stack_module_state`` and ``vmap``)
    runs, and is not refused.

    Args:
        model: the model.

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


_WIDTH_ERROR = re.compile(r"mat1 and mat2 shapes cannot be multiplied \((\d+)x(\d+) and (\d+)x(\d+)\)")
_DTYPE_ERROR = re.compile(r"same dtype|should be the same|expected scalar type|Input type \(", re.IGNORECASE)


def is_dtype_error(err: BaseException) -> bool:
    """Whether ``err`` is torch's error for operands of different dtypes (``mat1 and mat2 must have the
    same dtype``, ``Input type (double) and weight type (float) should be the same``, ...).

    Examples:
        >>> is_dtype_error(RuntimeError("mat1 and mat2 must have the same dtype, but got Double and Float"))
        True
    """
    return bool(_DTYPE_ERROR.search(str(err)))


def keyword_clash_hint(err: BaseException, keywords: Mapping[str, Any], num_inputs: int) -> str | None:
    """The way out of Python's "got multiple values for argument 'image'" when a keyword forward
    argument names a parameter that the inputs, passed first and positionally, fill already: the
    table of ``forward(self, image, tab)`` explained with ``{"image": image}`` lands in ``image``.
    ``None`` for any other error.

    Args:
        err: the error the model call raised.
        keywords: the keyword forward arguments of the call.
        num_inputs: the number of explained inputs passed first, positionally.

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

    Args:
        model: the model whose pass failed.
        inputs: the inputs of the pass.
        err: the error the pass raised.

    Examples:
        >>> import torch
        >>> err = RuntimeError("mat1 and mat2 must have the same dtype, but got Double and Float")
        >>> print(dtype_hint(nn.Linear(2, 1), (torch.zeros(1, 2, dtype=torch.float64),), err))
        Argument `inputs` is torch.float64 but the model's parameters are torch.float32: pass inputs of the model's dtype (`x.to(torch.float32)`) or convert the model (`model.to(torch.float64)`)
    """
    if not is_dtype_error(err):
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


def width_hint(model: nn.Module, inputs: tuple[Any, ...], err: BaseException) -> str | None:
    """What to do when the inputs' last dimension is not the width the model's first layer, an
    ``nn.Linear``, takes (torch's "mat1 and mat2 shapes cannot be multiplied" names neither the
    argument nor the layer), or ``None`` when ``err`` is not that error of that layer.

    Args:
        model: the model whose pass failed.
        inputs: the inputs of the pass.
        err: the error the pass raised.

    Examples:
        >>> import torch
        >>> err = RuntimeError("mat1 and mat2 shapes cannot be multiplied (6x5 and 4x8)")
        >>> print(width_hint(nn.Sequential(nn.Linear(4, 8)), (torch.zeros(6, 5),), err))
        Argument `inputs` has 5 features per sample (its last dimension) but the model's first layer '0' (Linear) takes 4
    """
    found = _WIDTH_ERROR.search(str(err))
    x = inputs[0] if inputs else None
    if found is None or not isinstance(x, Tensor) or not x.dim():
        return None
    name, first = next(((n, m) for n, m in model.named_modules() if not list(m.children()) and any(True for _ in m.parameters(recurse=False))),
                       ("", None))  # the first leaf with parameters, and its name
    if not isinstance(first, nn.Linear) or int(found[2]) != x.shape[-1] or int(found[3]) != first.in_features:
        return None  # another layer failed (after a convolution, say): its width is not the input's
    layer = f"the model's first layer {name!r} (Linear)" if name else "the model (Linear)"
    if x.dim() == 1:  # samples of one value each, or one sample without its batch dimension
        way = ("pass them as x[:, None] ([N, 1])" if first.in_features == 1 else
               f"for one sample of {first.in_features} features pass x[None] ([1, {first.in_features}])")
        return f"Argument `inputs` is 1-D (samples of one value each) but {layer} takes {first.in_features} features per row: {way}"
    transposed = f"; transposed? its first dimension is {first.in_features}" if x.dim() == 2 and x.shape[0] == first.in_features else ""
    return f"Argument `inputs` has {x.shape[-1]} features per sample (its last dimension) but {layer} takes {first.in_features}{transposed}"


# torch 2.13: "Guard failed: x.size()[0] == 2"; torch 2.3: "Expected input at *args[0].shape[0] to be equal to 2, but got 7"
_BATCH_GUARD = re.compile(r"Guard failed: .*size\(\)\[0\]|Expected input at \S*\.shape\[0\] to be equal to \d+")


def export_guard_hint(err: BaseException) -> str | None:
    """The way out when a ``torch.export``'ed model (``ExportedProgram.module()``) refuses a batch of another
    size than the one it was exported with (torch's "Guard failed: x.size()[0] == 2"): the estimators run
    passes of other numbers of rows (chunks of the probe, stacked interventions). ``None`` for any other error.

    Args:
        err: the error the pass raised.

    Examples:
        >>> print(export_guard_hint(AssertionError("Guard failed: x.size()[0] == 2")))  # doctest: +ELLIPSIS
        The model was exported (torch.export) for batches of one size, and the audits run passes of other numbers ...
        >>> export_guard_hint(RuntimeError("Expected input at *args[0].shape[0] to be equal to 2, but got 7")) is not None
        True
    """
    if not _BATCH_GUARD.search(str(err)):
        return None
    return ("The model was exported (torch.export) for batches of one size, and the audits run passes of other numbers "
            "of rows (chunks of the probe, stacked interventions): export it with a dynamic batch dimension, "
            "torch.export.export(model, (x,), dynamic_shapes=({0: torch.export.Dim('batch')},)), or pass the eager model")


_NO_GRAD_ERROR = "does not require grad and does not have a grad_fn"
_CUT_GRAPH_ERROR = "appears to not have been used in the graph"


def forward_gradient_hint(err: BaseException, grad_enabled: bool) -> str | None:
    """The way out when a forward that takes gradients itself (``torch.autograd.grad(E.sum(), x, create_graph=True)``:
    forces ``-dE/dx``, a PINN's ``u_x``) fails in an estimator's pass, or ``None`` for any other error:

    - torch's "element 0 of tensors does not require grad ..." in a pass run without autograd (the estimators run
      the model under ``torch.no_grad()``: an intervention needs no gradient): the forward must switch it on itself;
    - torch's "... appears to not have been used in the graph": the estimator replaced a hidden layer's output by
      values it cached from the probe (constants to autograd), so the model's outputs no longer reach its inputs.
      ``input_effects`` and the layer causal map (input interventions only), ``intervene`` and ``unit_effects``
      (``method="exact"``) differentiate through the layer's unchanged units; the causal graph, which patches cached values into a layer, cannot, nor can the first-order
      ``method="attribution"``/``"atp"``, which run the model on from cached values too (refused before, by
      ``unit_attribution``, where the forward keeps its gradient's graph, ``create_graph=True``; reaching this error
      where it does not), and the note names them.

    Args:
        err: the error the pass raised.
        grad_enabled: whether autograd was on where the pass was called.

    Examples:
        >>> err = RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
        >>> print(forward_gradient_hint(err, grad_enabled=False))  # doctest: +ELLIPSIS
        The model takes gradients in its forward pass (torch.autograd.grad), and the estimators run it under torch.no_grad() ...
    """
    if not isinstance(err, RuntimeError):
        return None
    if _NO_GRAD_ERROR in str(err) and not grad_enabled:
        return ("The model takes gradients in its forward pass (torch.autograd.grad), and the estimators run it under "
                "torch.no_grad() (an intervention needs no gradient): switch autograd on inside forward, "
                "`with torch.enable_grad(): x = x if x.requires_grad else x.detach().requires_grad_(True); ...; "
                "f = -torch.autograd.grad(E.sum(), x, create_graph=True)[0]`, which also runs in Lightning's validation "
                "with Trainer(inference_mode=False)")
    if _CUT_GRAPH_ERROR in str(err):
        return ("The model takes gradients with respect to its inputs in its forward pass, and this estimator replaced a "
                "hidden layer's output by values cached from the probe, constants that no gradient reaches the inputs "
                "through: input effects, Sobol' indices, the layer causal map (LayerMapAudit), `intervene` and "
                "unit_effects/UnitImportanceAudit with method='exact' intervene on such a model (the unchanged units keep "
                "their gradient); the causal graph "
                "and the first-order method='attribution'/'atp' (and screen=) of unit_effects/UnitImportanceAudit do not: "
                "use method='exact'")
    return None


#: torch's refusal of a dense tensor where a sparse one is needed (``x.coalesce()``, ``x.indices()``, ``x.values()``,
#: ``x.crow_indices()`` of a dense ``x``: "coalesce expected sparse coordinate tensor layout but got Strided")
_DENSE_LAYOUT_ERROR = re.compile(r"expected sparse .*layout but got Strided")


def sparse_layout_hint(err: BaseException) -> str | None:
    """The way out when a forward that needs a sparse tensor (``torch.sparse.mm(x.coalesce(), W)``, ``x.indices()``)
    is given the dense rows every estimator runs (they set single features, the words of a bag of words, in rows of
    their own, which a sparse tensor does not allow; the callback and ``audit_model`` read a sparse probe densely), or
    ``None`` for any other error.

    Args:
        err: the error the pass raised.

    Examples:
        >>> err = RuntimeError("coalesce expected sparse coordinate tensor layout but got Strided")
        >>> print(sparse_layout_hint(err))  # doctest: +ELLIPSIS
        The model needs a sparse tensor, and the estimators run dense rows ...
    """
    if not isinstance(err, RuntimeError) or not _DENSE_LAYOUT_ERROR.search(str(err)):
        return None
    return ("The model needs a sparse tensor, and the estimators run dense rows (they set single features, the words of "
            "a bag of words, in rows of their own, which a sparse tensor does not allow; the callback and `audit_model` "
            "read a sparse probe densely): convert inside forward, `x = x if x.layout != torch.strided else "
            "x.to_sparse()` (`x.to_sparse_csr()` for CSR), or use operations that take both layouts (`x @ W`, "
            "`nn.Linear`, `torch.sparse.mm`) (docs/your_model.md, 'Packed, sparse and other input types')")


#: the way out of a state kept from an earlier call and read whatever the batch (:func:`stale_state_hint`), and the
#: text that marks the hint in an error (:func:`~.linked_samples.check_rows_independent` adds no other hint to it)
STALE_STATE_FIX = (
    "the audits explain the output of an input alone, in batches of their own choosing: start every sequence from a "
    "fresh state in eval mode (`h0 = self.h if self.training else None`), or, for a model run chunk by chunk (streaming: a GRU's state, a causal convolution's left context, a "
    "KV cache, reset by `reset_state()` at each utterance), audit a module that resets the state and runs the whole "
    "sequence, a LightningModule's `audited_module` (docs/your_model.md#streaming-models-a-state-carried-across-calls)")


def stale_state_hint(model: nn.Module, inputs: tuple[Any, ...], err: BaseException) -> str | None:
    """What to do when a pass failed on a tensor the model keeps from an earlier call, sized by another batch (a
    recurrent state ``self.h = h.detach()`` of a pass of 32 rows read by a pass of 2: torch's "Expected hidden size (1,
    2, 16), got [1, 32, 16]" names neither the state nor why the rows differ), or ``None``: the error names the pass's
    rows and a dimension of such a tensor (:func:`~.sample_independence.carried_states`' tensors, plain attributes and
    buffers of two or more dimensions, not normalisation statistics) other than 1 and the rows, which the pass's first
    input does not have either (a convolution's left context ``[32, C, 2]`` read by a pass of 2 rows is named); the
    indices a message names ("at non-singleton dimension 2") are no sizes. The hint says what to do for a graph held
    over one batch's rows too (an adjacency buffer ``[16, 16]``, named by its size, is no state).

    Args:
        model: the model whose pass failed.
        inputs: the inputs of the pass.
        err: the error the pass raised.

    Examples:
        >>> import torch
        >>> gru = nn.GRU(3, 4, batch_first=True)
        >>> gru.h = torch.zeros(1, 32, 4)
        >>> print(stale_state_hint(gru, (torch.zeros(2, 5, 3),), RuntimeError("Expected hidden size (1, 2, 4), got [1, 32, 4]"))[:64])
        The model keeps tensors besides its parameters that this pass of
    """
    from lightning_causal.causal.engine.sample_independence import _kept_tensors  # noqa: PLC0415 - it imports Forward

    x = inputs[0] if inputs else None
    # sizes only: an index the message names (torch's "at non-singleton dimension 2", "tensor number 1") is none
    numbers = {int(s) for s in re.findall(r"\d+", re.sub(r"(?:dimension|number) \d+", "", str(err)))}
    if not isinstance(x, Tensor) or not x.dim() or x.shape[0] not in numbers:
        return None
    rows = x.shape[0]
    stale = [f"{name} {list(t.shape)}" for name, t in _kept_tensors(model).items()
             if t.dim() > 1 and any(d > 1 and d != rows and d in numbers and d not in x.shape for d in t.shape)]
    if not stale:
        return None
    return (f"The model keeps tensors besides its parameters that this pass of {rows} row(s) may read, of a size other "
            f"than its rows that the error names: {', '.join(stale[:3])}. Where that is a state carried from call to call "
            f"(a state left by a pass of another batch, read whatever the batch), {STALE_STATE_FIX}. Where it is held "
            "over the rows of one batch (a graph's adjacency over its nodes, `adj @ x`), the rows are no samples the "
            "audits can run alone: make the graph the sample (docs/recipes.md, 'Graph neural networks')")
