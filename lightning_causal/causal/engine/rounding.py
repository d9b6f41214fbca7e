"""The rounding a row's outputs may take between a pass of its own and a pass among other rows: the bound below which a
difference is float rounding (:func:`rounding_bound`, of the precision the values went through: :func:`model_precision`)
and the scale it is measured on (:func:`row_scales`). One rule for the two checks that compare rows alone with their
pass: the clean probe's (:func:`~.sample_independence.check_samples_independent`) and the stacked intervened rows'
(:class:`~.stacked_rows.RowsAlone`). Both refuse past 1% of the scale (:func:`~.sample_independence.same_outputs`) and
warn between the bound and the 1% (a solver stopping on its batch's residual), once per
:func:`~.batching.remembered_fit` block between them (:data:`BEYOND_ROUNDING`)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lightning_causal._compat import autocast_dtype, is_autocast_enabled

__all__ = ["BEYOND_ROUNDING", "ROUNDING", "model_precision", "rounding_bound", "row_scales", "weights_dtype", "weights_dtypes"]

#: the difference of a row alone and in its pass, on the row's scale (``1 + max |value|``), above which it is more than
#: float rounding (:func:`rounding_bound`: this or 512 units in the last place of the values' precision, the larger):
#: ordinary float32 models stayed below 2.4e-7 (MLPs of 2 to 6 layers with and without BatchNorm in eval, a BatchNorm
#: CNN, an LSTM, a transformer layer; passes of up to 784 rows), a deep-equilibrium model stopping on its batch's
#: residual (Anderson, tolerance 1e-2) gave 7.7e-4 to 2.6e-3 in passes the refusal's 1% let through
ROUNDING = 1e-4

#: the :func:`~.batching.first_in_block` key of the warning of rows that differ from their pass beyond rounding: one
#: warning per block (one audit) whichever check sees it first, the clean probe's or the stacked rows'; also its kind
#: (:func:`~.batching.kinded`), by which the callback shows it once per fit (its figures move between audit epochs)
BEYOND_ROUNDING = "rows beyond rounding"


def row_scales(values: Tensor) -> Tensor:
    """Each row's scale ``1 + max |values[i]|`` over its finite entries (``[k]``, float64; 1 for a row of none), on which
    a difference is weighed against :func:`rounding_bound` (and against the refusal's 1%,
    :func:`~.sample_independence.same_outputs`).

    Examples:
        >>> row_scales(torch.tensor([[1.0, -3.0], [float("inf"), 0.5]]))
        tensor([4.0000, 1.5000], dtype=torch.float64)
    """
    m = values.detach().abs().double().reshape(values.shape[0], -1)
    return 1.0 + torch.where(m.isfinite(), m, 0.0).amax(1) if m.shape[1] else torch.ones(values.shape[0], dtype=torch.float64)


def model_precision(model: nn.Module | None) -> tuple[float, bool]:
    """What :func:`rounding_bound` reads of ``model``: the machine epsilon of the floating dtype holding most of its
    parameters' elements (of its floating buffers where it has no floating parameter; the coarser of two holding as
    many; 0.0 for none), the precision its rows' numbers pass through: a float16 body whose logits are returned in
    float32 (``.float()`` at the end of forward) computes in float16, while one bfloat16 scale of a few elements in a
    float32 model (a LayerNorm's, cast where it is read) does not make the model's rounding bfloat16's; and whether it
    holds a convolution (``True`` where ``model`` is not known).

    Examples:
        >>> model_precision(torch.nn.Linear(2, 2).half()), model_precision(None)
        ((0.0009765625, False), (0.0, True))
    """
    if model is None:
        return 0.0, True
    dtype = weights_dtype(model)
    return (torch.finfo(dtype).eps if dtype is not None else 0.0), any(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules())


def weights_dtype(model: nn.Module) -> torch.dtype | None:
    """The floating dtype holding most of ``model``'s parameters' elements (of its floating buffers where it has no
    floating parameter; the coarser of two holding as many; ``None`` for none): the dtype its numbers pass through, that
    :func:`model_precision` reads and a report names (a ``"bf16-true"`` fit's ``torch.bfloat16``; a
    ``"bf16-mixed"`` one's ``torch.float32``, the weights audited outside autocast).

    Examples:
        >>> weights_dtype(torch.nn.Linear(2, 2).bfloat16()), weights_dtype(torch.nn.ReLU())
        (torch.bfloat16, None)
    """
    counts = weights_dtypes(model)
    return max(counts, key=lambda d: (counts[d], torch.finfo(d).eps)) if counts else None


def weights_dtypes(model: nn.Module) -> dict[torch.dtype, int]:
    """The floating dtypes of ``model``'s parameters (of its floating buffers where it has no floating parameter), each
    with the count of elements it holds: :func:`weights_dtype` takes the largest; a report names the others (a float32
    model with a bfloat16 layer, whose outputs carry bfloat16's rounding).

    Examples:
        >>> weights_dtypes(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1).bfloat16()))
        {torch.float32: 6, torch.bfloat16: 3}
    """
    counts: dict[torch.dtype, int] = {}
    for tensors in (model.parameters(), model.buffers()):
        for t in tensors:
            if t.is_floating_point() and not isinstance(t, nn.parameter.UninitializedTensorMixin):
                counts[t.dtype] = counts.get(t.dtype, 0) + t.numel()
        if counts:  # the parameters' dtypes; buffers only for a model of none
            break
    return counts


def rounding_bound(values: Tensor, model: nn.Module | None = None, held: tuple[float, bool] | None = None) -> float:
    """The largest difference of a row alone and in its pass, on its scale (:func:`row_scales`), taken for float
    rounding: :data:`ROUNDING` or 512 units in the last place of the precision the values were computed in, the larger
    (float16 and bfloat16 values or most of ``model``'s parameters, :func:`model_precision`; TF32 matmuls of float32
    CUDA values, TF32 convolutions where ``model`` holds one or is not known, a float32 matmul precision below
    ``'highest'``, autocast: at or above the refusal's 1%, so never warned of). ``held``: :func:`model_precision` of
    ``model`` where the caller read it already.

    Examples:
        >>> rounding_bound(torch.ones(2)), rounding_bound(torch.ones(2, dtype=torch.float16)) >= 1e-2
        (0.0001, True)
        >>> rounding_bound(torch.ones(2), torch.nn.Linear(2, 2).half()) >= 1e-2  # float32 logits of a float16 body
        True
    """
    dtype = values.real.dtype if values.is_complex() else values.dtype
    if not dtype.is_floating_point:
        return ROUNDING
    held_eps, convolves = held if held is not None else model_precision(model)
    eps = max(torch.finfo(dtype).eps, held_eps)
    if dtype == torch.float32:
        precision = torch.get_float32_matmul_precision()
        if precision != "highest":
            eps = max(eps, 2.0 ** (-10 if precision == "high" else -7))
        if values.is_cuda and (torch.backends.cuda.matmul.allow_tf32 or (torch.backends.cudnn.allow_tf32 and convolves)):
            eps = max(eps, 2.0 ** -10)  # cuDNN's TF32 (on by default) serves convolutions only
    device = values.device.type
    try:
        if is_autocast_enabled(device):
            eps = max(eps, torch.finfo(autocast_dtype(device)).eps)
    except (RuntimeError, TypeError, AttributeError):  # a device type autocast does not know
        pass
    return max(ROUNDING, 512 * eps)
