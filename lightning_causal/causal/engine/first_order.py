"""The first-order change of a real output when values move, for real and complex values alike.

Complex values (STFT frames as inputs, a layer returning ``torch.fft`` frames) take the product with the
gradient conjugated: ``Re(conj(g) · Δ)``. For ``z = a + i c`` and a real output ``f``, autograd's gradient is
``g = ∂f/∂a + i ∂f/∂c`` (the conjugate Wirtinger derivative, times 2), and the first-order change of ``f`` when
``z`` moves by ``Δ = Δa + i Δc`` is ``∂f/∂a Δa + ∂f/∂c Δc = Re(conj(g) Δ)``: exact for a model linear in ``Re z``
and ``Im z`` (``g · Δ`` without the conjugate flips the sign of the imaginary parts' share). Used by the
first-order estimators of input effects (:mod:`~lightning_causal.causal.effects.input_attribution`) and of unit
effects (:mod:`~lightning_causal.causal.effects.unit_attribution`).
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["first_order_change"]


def first_order_change(delta: Tensor, grad: Tensor) -> Tensor:
    """The first-order change ``<grad, delta>`` of a real output, element by element: ``delta * grad``, and of complex
    values (complex inputs, a layer returning ``torch.fft`` frames) ``Re(conj(grad) * delta)``, as autograd's gradient
    of a real output in a complex value is ``dL/dRe + i dL/dIm`` (``delta * grad`` flipped the sign of the imaginary
    parts' share; derivation in the module docstring).

    Args:
        delta: the change of the values.
        grad: autograd's gradient of the (real) output at them.

    Examples:
        >>> import torch
        >>> first_order_change(torch.tensor([1j]), torch.tensor([2j])).item()  # f = 2 Im z: moving Im z by 1 adds 2
        2.0
    """
    return (delta * grad.conj()).real if grad.is_complex() else delta * grad
