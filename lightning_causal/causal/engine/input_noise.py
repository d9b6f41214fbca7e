"""The scale of the input noise of every stability measure: ``noise`` standard deviations of each input element
over the probe's samples (a column of a table, a pixel), one rule for
:func:`~lightning_causal.causal.structure.graph.graph_stability` (``CausalGraphAudit``'s ``stability_noise``) and
the baseline comparison (:func:`~lightning_causal.baselines.metrics.stability`, ``sensitivity``, ``CaptumBaseline``'s
``stability`` scalars).

The standard deviation of all the probe's values together took in the spread between columns: on a table with
columns of sd 1 and sd 1000 it is 707, so noise 0.1 moved the column of sd 1 by 71 of its own standard deviations and
the stability measured the explanation on noise, not near the probe.
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["element_sd", "input_noise_sd", "varies"]


def element_sd(x: Tensor) -> Tensor:
    """The standard deviation of each element of ``x`` ``[N, ...]`` over the samples (dim 0), ``[1, ...]`` in ``x``'s
    dtype: ``sd_e = sqrt(Σ_n (x_ne − mean_e)² / (N_e − 1))`` over the ``N_e`` samples where the element is finite
    (``N_e − 1``: Bessel's correction; 0 for one finite value). An element constant over the samples (an image's
    constant border, a constant column) has sd 0. A NaN or infinite value (a missing value a model reads as such) is
    left out of its element's spread rather than making it NaN: the noise of the other samples stays of their scale.

    Args:
        x: floating-point inputs ``[N, ...]``, ``N >= 1``.

    Examples:
        >>> import torch
        >>> [round(v, 2) for v in element_sd(torch.tensor([[0.0, 1000.0, 5.0], [2.0, 3000.0, 5.0]]))[0].tolist()]
        [1.41, 1414.21, 0.0]
        >>> element_sd(torch.tensor([[0.0, 1.0], [2.0, float("nan")], [4.0, 3.0]]))  # column 1: sd of 1 and 3
        tensor([[2.0000, 1.4142]])
    """
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() < 1 or x.shape[0] < 1:
        raise ValueError(f"Expected argument `x` to be a floating-point tensor [N, ...] with N >= 1 but got "
                         f"{list(x.shape) if isinstance(x, Tensor) else type(x).__name__}"
                         f"{f' of {x.dtype}' if isinstance(x, Tensor) else ''}")
    z, finite = x.detach().double(), x.isfinite()
    if bool(finite.all()):
        return z.std(0, unbiased=x.shape[0] > 1, keepdim=True).to(x.dtype)
    count = finite.sum(0, keepdim=True)
    z = z.where(finite, 0.0)
    centred = (z - z.sum(0, keepdim=True) / count.clamp(min=1)).where(finite, 0.0)
    return (centred.square().sum(0, keepdim=True) / (count - 1).clamp(min=1)).sqrt().to(x.dtype)


def input_noise_sd(x: Tensor, noise: float) -> Tensor:
    """The noise standard deviation of each element of ``x`` ``[N, ...]``: ``noise · sd_e``, ``sd_e`` its standard
    deviation over the samples (:func:`element_sd`), ``[1, ...]``: the noisy copy ``x + input_noise_sd(x, noise) · ε``,
    ``ε ~ N(0, I)``, moves each column of a table, each pixel, by ``noise`` of its own spread over the probe.

    An element constant over the probe gets no noise: an image's border that is 0 in every sample, a constant column.
    The noisy copies stay where the data varies, and a model is not asked about values it never sees there (noise on
    an MNIST border would move Saliency's border gradients, not the explanation near the data). A probe of one sample
    (or of identical samples) has no spread at all: :func:`varies` tells it, and the stability measures then give no
    noisy figure rather than one of no noise.

    Args:
        x: floating-point inputs ``[N, ...]``.
        noise: the share of each element's standard deviation, ``>= 0``.

    Examples:
        >>> import torch
        >>> [round(v, 4) for v in input_noise_sd(torch.tensor([[0.0, 1000.0], [2.0, 3000.0]]), 0.1)[0].tolist()]
        [0.1414, 141.4214]
    """
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not noise >= 0:
        raise ValueError(f"Expected argument `noise` to be a non-negative float (a share of each element's standard "
                         f"deviation) but got {noise!r}")
    return element_sd(x) * noise


def varies(x: Tensor) -> bool:
    """Whether some element of the floating-point ``x`` ``[N, ...]`` takes different finite values over the samples (its
    :func:`element_sd` is above 0): the per-element noise scale (:func:`input_noise_sd`) is 0 everywhere otherwise (a
    probe of one sample).

    Args:
        x: inputs ``[N, ...]``; integer inputs (token ids) take no Gaussian noise and give ``False``.

    Examples:
        >>> import torch
        >>> varies(torch.tensor([[1.0, 2.0]])), varies(torch.tensor([[1.0, 2.0], [1.0, 3.0]]))
        (False, True)
    """
    return bool(x.is_floating_point() and x.shape[0] > 1 and (element_sd(x) > 0).any())
