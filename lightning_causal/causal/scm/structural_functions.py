"""Structural functions ``f_j`` of an :class:`~lightning_causal.causal.scm.scm.AdditiveNoiseSCM`: the
protocol (``fit(parents, target)``, ``f(parents)``), linear least squares (the default) and a
small MLP (a nonlinear alternative, trained with a private generator)."""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn
from torch.nn.utils import skip_init

from lightning_causal.causal.engine.checks import check_float, check_int, check_seed

__all__ = ["StructuralFunction", "LinearFunction", "MLPFunction"]


@runtime_checkable
class StructuralFunction(Protocol):
    """A fitted structural function ``f_j``: ``fit(parents [N, P], target [N])`` then ``f(parents) -> [N]``.

    Examples:
        >>> import torch
        >>> f = LinearFunction().fit(torch.tensor([[0.0], [1.0]]), torch.tensor([1.0, 3.0]))  # f(pa) = 1 + 2 pa
        >>> isinstance(f, StructuralFunction), f(torch.tensor([[2.0]]))
        (True, tensor([5.]))
    """

    def fit(self, parents: Tensor, target: Tensor) -> StructuralFunction: ...

    def __call__(self, parents: Tensor) -> Tensor: ...


class LinearFunction:
    """``f(pa) = b + w · pa`` fitted by least squares (float64); ``b`` = the mean for a root node.

    Examples:
        >>> pa = torch.tensor([[0.0], [1.0], [2.0]])
        >>> f = LinearFunction().fit(pa, 1.0 + 2.0 * pa[:, 0])
        >>> f.weight, f.bias
        (tensor([2.0000], dtype=torch.float64), tensor(1.0000, dtype=torch.float64))
    """

    def __init__(self) -> None:
        self.weight: Tensor | None = None
        self.bias: Tensor | None = None

    def fit(self, parents: Tensor, target: Tensor) -> LinearFunction:
        """Least-squares fit of ``target`` on ``parents`` (float64, with an intercept); returns ``self``.

        Args:
            parents: the parents' values ``[N, P]`` (``P = 0`` for a root: ``b`` is the mean).
            target: the node's values ``[N]``.
        """
        pa, y = parents.detach().double().cpu(), target.detach().double().cpu()
        design = torch.cat([torch.ones(pa.shape[0], 1, dtype=pa.dtype), pa], dim=1)
        coef = torch.linalg.lstsq(design, y.unsqueeze(1), driver="gelsd").solution.squeeze(1)
        self.bias, self.weight = coef[0], coef[1:]
        return self

    def __call__(self, parents: Tensor) -> Tensor:
        if self.weight is None or self.bias is None:
            raise RuntimeError("LinearFunction is not fitted; call `fit` first")
        w = self.weight.to(device=parents.device, dtype=parents.dtype)
        return (parents * w).sum(dim=1) + self.bias.to(device=parents.device, dtype=parents.dtype)


def _std(t: Tensor, dim: int | None) -> Tensor:
    """Standard deviation for standardising, 1 where it is 0 (a constant column stays as it is)."""
    sd = t.std(dim=dim, unbiased=False) if dim is not None else t.std(unbiased=False)
    return torch.where(sd > 0, sd, torch.ones_like(sd))


class MLPFunction:
    r"""A small MLP ``f(pa)`` fitted by full-batch Adam on squared error (a nonlinear alternative).

    .. math:: f(pa) = \bar y + s_y \, g\big((pa − \bar{pa}) / s_{pa}\big)

    The parents and the target are standardised with their fitted means and standard deviations
    (``g`` is the MLP), so data in raw units (age in years, income in dollars) fit as well as
    standardised data: a tanh layer on unscaled inputs saturates and biases the counterfactuals.
    Initialised and trained with a private generator (``seed``); the global RNG is untouched.

    Args:
        hidden: hidden width.
        steps: Adam steps.
        lr: learning rate.
        seed: seed of the initialisation.

    Examples:
        >>> a = torch.linspace(17, 90, 200).unsqueeze(1)
        >>> f = MLPFunction(steps=400).fit(a, 0.5 * a.squeeze(1))
        >>> abs(float(f(torch.tensor([[60.0]])) - f(torch.tensor([[50.0]]))) - 5.0) < 0.5  # slope 0.5
        True
    """

    def __init__(self, hidden: int = 16, steps: int = 300, lr: float = 1e-2, seed: int = 0) -> None:
        check_int("hidden", hidden, minimum=1)
        check_int("steps", steps, minimum=1)
        check_float("lr", lr, minimum=0.0, open_min=True)
        check_seed(seed)
        self.hidden, self.steps, self.lr, self.seed = hidden, steps, float(lr), seed
        self.net: nn.Module | None = None

    def fit(self, parents: Tensor, target: Tensor) -> MLPFunction:
        """Train the MLP on ``(parents, target)`` (float32); returns ``self``.

        Args:
            parents: the parents' values ``[N, P]``.
            target: the node's values ``[N]``.
        """
        with torch.inference_mode(False):  # trained by autograd, even when fitted under a caller's inference_mode
            return self._fit(parents.detach().float().clone(), target.detach().float().clone())

    def _fit(self, pa: Tensor, y: Tensor) -> MLPFunction:
        self.mean = y.mean()
        if pa.shape[1] == 0:
            self.net = None
            return self
        self.scale = _std(y, dim=None)
        self.pa_mean, self.pa_scale = pa.mean(0), _std(pa, dim=0)
        pa, y = (pa - self.pa_mean) / self.pa_scale, (y - self.mean) / self.scale
        g = torch.Generator().manual_seed(self.seed)
        # skip_init: nn.Linear's default initialisation would draw from the global RNG; the weights are set below
        net = nn.Sequential(skip_init(nn.Linear, pa.shape[1], self.hidden), nn.Tanh(), skip_init(nn.Linear, self.hidden, 1))
        with torch.no_grad():
            for p in net.parameters():
                p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) / math.sqrt(max(1, p.shape[-1])))
        opt = torch.optim.Adam(net.parameters(), lr=self.lr)
        with torch.enable_grad():
            for _ in range(self.steps):
                opt.zero_grad()
                loss = (net(pa).squeeze(1) - y).pow(2).mean()
                loss.backward()
                opt.step()
        self.net = net.requires_grad_(False)
        return self

    def __call__(self, parents: Tensor) -> Tensor:
        if not hasattr(self, "mean"):
            raise RuntimeError("MLPFunction is not fitted; call `fit` first")
        like = {"device": parents.device, "dtype": parents.dtype}
        base = self.mean.to(**like)
        if self.net is None:
            return base.expand(parents.shape[0])
        net = self.net.to(**like)
        pa = (parents - self.pa_mean.to(**like)) / self.pa_scale.to(**like)
        return net(pa).squeeze(1) * self.scale.to(**like) + base
