"""The SCM counterfactual of a binary attribute as a :class:`~lightning_causal.causal.scm.counterfactual.Counterfactual`:
``scm.flip("sex")`` flips the column in every row and recomputes its descendants with each row's own
noises (Kusner et al. 2017, level 3)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from lightning_causal.causal.scm.codes import check_binary_values
from lightning_causal.causal.scm.counterfactual import Counterfactual, binary_groups

__all__ = ["SCMFlip"]


class SCMFlip(Counterfactual):
    r"""Flip the binary ``column`` of an :class:`~lightning_causal.causal.scm.scm.AdditiveNoiseSCM`
    (``v0 <-> v1``) and propagate: abduction, action, prediction.

    For a linear SCM this is affine in ``x``: with ``c`` the total effects of column ``s`` on every
    column (``c_s = 1``, exact zeros for non-descendants; ``scm.flip_effects``),

    .. math:: x_{cf} = x + (v_0 + v_1 − 2 x_s)\, c^\top

    (``c`` is cached per dtype and device until the SCM's next ``fit``); other SCMs take the
    abduction–action–prediction path of ``scm.counterfactual``. Usually made by ``scm.flip(column)``.

    Args:
        scm: a fitted SCM (it may be fitted later, before the first flip).
        column: the sensitive column (name or index).
        values: the two values of the binary attribute.

    Examples:
        >>> import torch
        >>> from lightning_causal.causal.scm.scm import AdditiveNoiseSCM
        >>> scm = AdditiveNoiseSCM.linear(["a", "m"], {"m": {"a": 2.0}})
        >>> scm.flip("a").flip_counterfactual(torch.tensor([[0.0, 0.5], [1.0, 2.0]]))
        tensor([[1.0000, 2.5000],
                [0.0000, 0.0000]])
    """

    changes_every_row = True  # a binary column always takes its other value

    def __init__(self, scm: AdditiveNoiseSCM, column: str | int, values: Sequence[float] = (0.0, 1.0)) -> None:
        if not isinstance(scm, AdditiveNoiseSCM):
            raise TypeError(f"Expected argument `scm` to be an AdditiveNoiseSCM but got {type(scm).__name__}")
        values = check_binary_values(values)
        self.scm = scm
        self.column = scm.index(column)
        self.name = scm.columns[self.column]
        self.values = tuple(values)

    def flip_counterfactual(self, x: Tensor) -> Tensor:
        return self.scm._flip(x, self.column, self.values)

    def groups(self, x: Tensor) -> Tensor | None:
        """Group ``k`` is the rows whose column holds ``values[k]`` (``-1`` elsewhere): the group
        metrics do not depend on how the attribute is coded.

        Args:
            x: inputs ``[N, D]``.
        """
        if x.dim() != 2 or x.shape[1] <= self.column:
            return None
        return binary_groups(x[:, self.column], self.values)

    def check_sensitive(self, sensitive: str | int | None) -> None:
        if sensitive is not None and self.scm.index(sensitive) != self.column:
            raise ValueError(f"Expected the sensitive column {sensitive!r} to be the flipped column {self.name!r}")

    def __repr__(self) -> str:
        return f"SCMFlip(column={self.name!r}, values={self.values})"


# at the end, after the class: scm imports this module. A name of the module's globals, so that
# typing.get_type_hints(SCMFlip.__init__) resolves the annotation of `scm` (jsonargparse, LightningCLI)
from lightning_causal.causal.scm.scm import AdditiveNoiseSCM  # noqa: E402
