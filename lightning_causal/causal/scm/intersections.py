"""Intersectional groups (sex × race) for the group metrics of a counterfactual, without a
:class:`~lightning_causal.causal.scm.counterfactual.Counterfactual` subclass of one's own."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypedDict

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.forward import OutputSpec
from lightning_causal.causal.engine.state import resolve_target
from lightning_causal.causal.scm.attribute_flip import resolve_counterfactual
from lightning_causal.causal.scm.counterfactual import CallableCounterfactual, Counterfactual
from lightning_causal.causal.scm.fairness import _check_x, _counterfactual_probabilities

__all__ = ["Intersections", "WorldGaps", "world_gaps"]


def _is_index(c: object) -> bool:
    return isinstance(c, int) and not isinstance(c, bool) and c >= 0


def _numbers(values: object) -> list[float]:
    """``values`` as floats (a sequence, array or tensor of numbers), or ``[]`` where they are none."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        return []
    try:
        values = list(values)  # a 0-d tensor or array iterates not
        return [] if any(isinstance(v, (str, bytes)) for v in values) else [float(v) for v in values]
    except (TypeError, ValueError):  # an entry that is no number
        return []


class Intersections(Counterfactual):
    """A counterfactual whose groups are the intersections of several sensitive attributes.

    ``x_cf`` is ``counterfactual``'s (the flip whose gap is measured: sex, a race shift, or a callable
    that moves both); the group metrics of
    :class:`~lightning_causal.audits.fairness.FairnessAudit` compare every combination of the
    attributes' levels (``female × race_C``) instead of the levels of one attribute, so that a bias on
    one intersection, which the groups of each attribute alone average away, shows (its positive rate,
    its interval, its own counterfactual gap). Group ids number the combinations in the order of
    ``itertools.product`` over the attributes in the order given (the last attribute varies fastest);
    ``group_names`` names them, joined by ``" × "``. A row with a value that is no level of an
    attribute (a block that is not one-hot) is in no group (``-1``). Groups are
    :math:`g = ((k_1 · n_2 + k_2) · n_3 + k_3) …` for the level indices :math:`k_i` of attributes of
    :math:`n_i` levels. Intersectional groups as in Buolamwini & Gebru 2018 (Gender Shades: error rates by
    gender × skin type, where each attribute alone hid the worst group) and Kearns et al. 2018 (fairness
    over subgroups defined by several attributes).

    Args:
        counterfactual: a :class:`Counterfactual` (``AttributeFlip``, ``scm.flip(column)``) or a callable
            ``x -> x_cf``.
        attributes: attribute name -> its columns: a column of level codes (an index, or a name of
            ``columns``), or a one-hot block (a list of two or more indices or names: level ``k`` is
            the rows whose column ``k`` is 1).
        columns: the column names in tensor order (for names in ``attributes``; a one-hot block's levels
            are then named by their columns).
        levels: attribute name -> the values of a code column (default ``(0, 1)``); a row holding another
            value is in no group.
        level_names: attribute name -> one name per level (``{"sex": ["male", "female"]}``); default:
            ``<attribute>=<value>`` for a code column, the column's name (else ``<attribute>=<k>``) for
            a block.

    Raises:
        ValueError: no attribute; a column that is neither an index nor a name of ``columns``; a block
            of fewer than two distinct columns; a column in two attributes; levels that are not two or
            more distinct finite numbers; ``level_names`` of another length or with a name twice (levels
            named alike without them); ``levels`` or ``level_names`` that is no mapping, or names an unknown
            attribute; ``levels`` for a block.

    Examples:
        >>> from lightning_causal.causal import AttributeFlip
        >>> x = torch.tensor([[0.0, 1, 0, 0], [1.0, 0, 0, 1], [1.0, 0, 1, 0], [1.0, 2, 2, 2]])
        >>> cf = Intersections(AttributeFlip(0), {"sex": 0, "race": [1, 2, 3]},
        ...                    level_names={"sex": ["male", "female"], "race": ["A", "B", "C"]})
        >>> cf.group_names
        ['male × A', 'male × B', 'male × C', 'female × A', 'female × B', 'female × C']
        >>> cf.groups(x).tolist()  # the last row's race block is not one-hot: no group
        [0, 5, 4, -1]
        >>> cf(x)[:, 0].tolist()  # the flip is the sex flip's
        [1.0, 0.0, 0.0, 0.0]
    """

    def __init__(
        self,
        counterfactual: object,
        attributes: Mapping[str, int | str | Sequence[int | str]],
        *,
        columns: Sequence[str] | None = None,
        levels: Mapping[str, Sequence[float]] | None = None,
        level_names: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.counterfactual = resolve_counterfactual(counterfactual)
        if not isinstance(attributes, Mapping) or not attributes or not all(isinstance(k, str) for k in attributes):
            raise ValueError(f"Expected argument `attributes` to be a non-empty mapping attribute name -> column(s) "
                             f"(`{{'sex': 0, 'race': [1, 2, 3]}}`) but got {attributes!r:.100}")
        if columns is not None and (isinstance(columns, str) or not all(isinstance(c, str) for c in columns)):
            raise ValueError(f"Expected argument `columns` to be None or the column names (strings) but got {columns!r:.100}")
        self.columns = list(columns) if columns is not None else None
        for arg, given in (("levels", levels), ("level_names", level_names)):
            if given is not None and not isinstance(given, Mapping):
                raise ValueError(f"Expected argument `{arg}` to be None or a mapping attribute name -> one entry per level "
                                 f"but got {given!r:.100}")
        levels, level_names = dict(levels or {}), dict(level_names or {})
        for arg, given in (("levels", levels), ("level_names", level_names)):
            unknown = sorted(set(given) - set(attributes))
            if unknown:
                raise ValueError(f"Expected the keys of argument `{arg}` to be attributes {list(attributes)} but got {unknown}")
        #: per attribute: ("code", column, values) or ("block", columns, None)
        self.attributes: dict[str, tuple[str, int | list[int], list[float] | None]] = {}
        used: dict[int, str] = {}
        names: list[list[str]] = []
        for attribute, spec in attributes.items():
            spec_is_code = not (isinstance(spec, Sequence) and not isinstance(spec, str))
            if not spec_is_code:
                block = [self._index(attribute, c) for c in spec]
                if len(block) < 2 or len(set(block)) < len(block):
                    raise ValueError(f"Expected the one-hot block of attribute {attribute!r} to be two or more distinct columns "
                                     f"but got {list(spec)!r}")
                if attribute in levels:
                    raise ValueError(f"Expected no `levels` for attribute {attribute!r}, a one-hot block (its levels are its "
                                     "columns); `level_names` names them")
                self.attributes[attribute] = ("block", block, None)
                cols, default = block, [self.columns[c] if self.columns is not None and c < len(self.columns)
                                        else f"{attribute}={k}" for k, c in enumerate(block)]
            else:
                column = self._index(attribute, spec)
                given = levels.get(attribute, (0.0, 1.0))
                values = _numbers(given)
                if len(values) < 2 or len(set(values)) < len(values) or not all(math.isfinite(v) for v in values):
                    raise ValueError(f"Expected the levels of attribute {attribute!r} to be two or more distinct finite numbers "
                                     f"but got {given!r:.100}")
                self.attributes[attribute] = ("code", column, values)
                cols, default = [column], [f"{attribute}={v:g}" for v in values]
            for c in cols:
                if c in used:
                    raise ValueError(f"Expected each column in one attribute but column {c} is in {used[c]!r} and {attribute!r}")
                used[c] = attribute
            own = level_names.get(attribute)
            if own is not None and (isinstance(own, str) or len(own) != len(default) or len({str(n) for n in own}) < len(own)):
                # a code column of more levels named without `levels=`: its levels are the default (0, 1)
                more = (f" (the levels of code column {attribute!r} are (0, 1), the default: for a code of {len(own)} levels "
                        f"pass them, e.g. `levels={{{attribute!r}: range({len(own)})}}`)"
                        if spec_is_code and attribute not in levels and not isinstance(own, str) and len(own) > 2 else "")
                raise ValueError(f"Expected argument `level_names[{attribute!r}]` to be {len(default)} distinct names, one per "
                                 f"level, but got {own!r:.100}{more}")
            if own is None and len(set(default)) < len(default):  # levels alike to 6 digits: 'x=0.1' twice
                raise ValueError(f"Expected the levels of attribute {attribute!r} to have distinct names but they are named "
                                 f"{default}: pass `level_names[{attribute!r}]`")
            names.append([str(n) for n in own] if own is not None else default)
        self.sizes = [len(n) for n in names]
        self.group_names = [" × ".join(combination) for combination in itertools.product(*names)]
        self._top = max(used)

    def _index(self, attribute: str, column: object) -> int:
        """A column given by index or by a name of ``columns``."""
        if _is_index(column):
            return int(column)  # type: ignore[call-overload]
        if isinstance(column, str) and self.columns is not None and column in self.columns:
            return self.columns.index(column)
        where = " (a name needs `columns=`)" if isinstance(column, str) and self.columns is None else ""
        raise ValueError(f"Expected the columns of attribute {attribute!r} to be column indices or names of `columns` but got "
                         f"{column!r}{where}")

    @property  # type: ignore[override]
    def column(self) -> int | None:
        """The column of the wrapped counterfactual (the flipped one), or ``None``."""
        return self.counterfactual.column

    @property  # type: ignore[override]
    def changes_every_row(self) -> bool:
        return self.counterfactual.changes_every_row

    def check_sensitive(self, sensitive: str | int | None) -> None:
        self.counterfactual.check_sensitive(sensitive)

    def flip_counterfactual(self, x: Tensor) -> Tensor:
        return self.counterfactual(x)

    def level(self, attribute: str, x: Tensor) -> Tensor:
        """Each row's level index of ``attribute`` ``[N]`` (``-1``: no level).

        Args:
            attribute: an attribute's name.
            x: inputs ``[N, D]``.
        """
        kind, where, values = self.attributes[attribute]
        if kind == "block":
            b = x[:, where]
            one_hot = ((b == 0) | (b == 1)).all(1) & (b.sum(1) == 1)
            return torch.where(one_hot, b.argmax(1), torch.full_like(one_hot, -1, dtype=torch.long))
        held = x[:, where]
        out = torch.full(held.shape, -1, dtype=torch.long, device=x.device)
        for k, v in enumerate(values):  # type: ignore[arg-type]
            out = out.masked_fill(held == v, k)
        return out

    def unlevelled(self, x: Tensor, most: int = 8) -> dict[str, list[float]]:
        """The values each code attribute holds in ``x`` that are none of its levels (rows in no group), at most
        ``most`` of them, smallest first; attributes without such values are left out (a block that is not one-hot is
        not listed here).

        Args:
            x: inputs ``[N, D]``.
            most: how many values to list per attribute.

        Examples:
            >>> cf = Intersections(lambda x: x, {"race": 0})  # levels (0, 1) by default
            >>> cf.unlevelled(torch.tensor([[0.0], [1.0], [2.0], [4.0], [2.0]]))
            {'race': [2.0, 4.0]}
        """
        self._check_inputs(x)
        out: dict[str, list[float]] = {}
        for attribute, (kind, where, values) in self.attributes.items():
            if kind != "code":
                continue
            held = x[:, where]
            other = held[~torch.isin(held, torch.tensor(values, dtype=held.dtype, device=held.device))]
            if other.numel():
                out[attribute] = [float(v) for v in other.unique()[:most].tolist()]
        return out

    def _check_inputs(self, x: object) -> None:
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] <= self._top:
            raise ValueError(f"Expected inputs [N, D] with D > {self._top} (the attributes' columns) but got "
                             f"{list(getattr(x, 'shape', [type(x).__name__]))}")

    def groups(self, x: Tensor) -> Tensor:
        """Each row's intersection id ``[N]`` (``group_names[id]``; ``-1``: a value that is no level).

        Args:
            x: inputs ``[N, D]``.
        """
        self._check_inputs(x)
        ids = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        none = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        for attribute, size in zip(self.attributes, self.sizes):
            k = self.level(attribute, x)
            ids, none = ids * size + k.clamp_min(0), none | (k < 0)
        return ids.masked_fill(none, -1)

    def worlds(self) -> dict[str, Callable[[Tensor], Tensor]]:
        """One counterfactual world per intersection: ``group_names[k]`` -> the map that sets every
        row's attributes to that combination of levels (a code column to its value, a one-hot block to
        its column's 1), every other column as it is (the naive intervention of
        :class:`~lightning_causal.causal.scm.attribute_flip.AttributeFlip`: descendants of the
        attributes are not recomputed). For :func:`world_gaps`.

        Examples:
            >>> cf = Intersections(lambda x: x, {"sex": 0, "race": [1, 2]})
            >>> w = cf.worlds()
            >>> list(w)
            ['sex=0 × race=0', 'sex=0 × race=1', 'sex=1 × race=0', 'sex=1 × race=1']
            >>> w["sex=1 × race=0"](torch.tensor([[0.0, 0.0, 1.0, 7.0]])).tolist()
            [[1.0, 1.0, 0.0, 7.0]]
        """
        out = {}
        for name, combination in zip(self.group_names, itertools.product(*(range(n) for n in self.sizes))):
            out[name] = self._world(list(combination))
        return out

    def _world(self, levels: list[int]) -> Callable[[Tensor], Tensor]:
        specs = list(self.attributes.values())

        def world(x: Tensor) -> Tensor:
            self._check_inputs(x)
            x = x.clone()
            for (kind, where, values), k in zip(specs, levels):
                if kind == "block":
                    x[:, where] = 0  # type: ignore[index]
                    x[:, where[k]] = 1  # type: ignore[index]
                else:
                    x[:, where] = values[k]  # type: ignore[index]
            return x

        return world

    def __repr__(self) -> str:
        return f"Intersections({self.counterfactual!r}, {' × '.join(self.attributes)})"


class WorldGaps(TypedDict):
    """What :func:`world_gaps` returns."""

    names: list[str]  #: the worlds' names, in order
    delta: Tensor  #: ``[W, N]``: p_t(x_w) − p_t(x) per world and row
    mean_abs: Tensor  #: ``[W, W]``: E_x|p_t(x_a) − p_t(x_b)| per pair of worlds
    worst_pair: tuple[str, str]  #: the pair of worlds of the largest ``mean_abs``
    worst_gap: float  #: that gap


def world_gaps(
    model: nn.Module,
    x: Tensor,
    worlds: Mapping[str, Callable[[Tensor], Tensor]] | Intersections,
    *,
    target: int | Tensor | None = None,
    max_batch_size: int | None = None,
    output: OutputSpec = None,
    additional_forward_args: Any = None,
) -> WorldGaps:
    r"""Counterfactual gaps between every pair of worlds: each row of ``x`` put into every combination
    of sensitive attributes (``Intersections.worlds()``: every (sex, race)), not one flip.

    .. math:: Δ_w(x) = p_t(x_w) − p_t(x), \quad G_{ab} = E_x |p_t(x_a) − p_t(x_b)| = E_x |Δ_a(x) − Δ_b(x)|

    with ``t`` the class predicted on ``x`` (or ``target``): Kusner et al. 2017's counterfactual fairness
    (Δ = 0 for every world), compared between every pair of worlds. ``G`` is symmetric with a zero diagonal; a
    model that ignores the attributes has ``G = 0``; the largest entry names the pair of worlds the
    model treats most differently (``female × C`` against ``male × C``). Each world's ``Δ_w`` is what
    :func:`~lightning_causal.causal.scm.fairness.counterfactual_fairness_gap`'s ``delta`` would be for that
    world (rows the world leaves as they are: 0 exactly, not run; the model in eval mode, no gradient), the
    factual pass on ``x`` run once for all worlds and their changed rows batched together.

    Args:
        model: classifier (logits ``[N, C]`` or one logit).
        x: inputs ``[N, D]``.
        worlds: world name -> the map ``x -> x_w`` (two or more), or an :class:`Intersections`
            (its :meth:`~Intersections.worlds`).
        target: class whose probability is compared; ``None``: the class predicted on ``x``.
        max_batch_size: rows per forward pass.
        output: which tensor of the model's return value holds the logits.
        additional_forward_args: extra forward arguments (they follow their rows).

    Raises:
        ValueError: fewer than two worlds, a world that is no callable, ``x`` no tensor ``[N, ...]`` with N >= 1, or
            (an :class:`Intersections`) ``x`` without the attributes' columns.

    Examples:
        >>> model = nn.Linear(3, 2)
        >>> _ = model.weight.data.copy_(torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]))
        >>> _ = model.bias.data.copy_(torch.tensor([-1.0, 0.0]))
        >>> x = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0]])  # sex, race one-hot (2 levels)
        >>> g = world_gaps(model, x, Intersections(lambda x: x, {"sex": 0, "race": [1, 2]}))
        >>> g["worst_pair"], round(g["worst_gap"], 4)  # logits (−1, 1) in the worlds of sex 0, (−1, 2) of sex 1: σ(3) − σ(2)
        (('sex=0 × race=0', 'sex=1 × race=0'), 0.0718)
    """
    worlds = worlds.worlds() if isinstance(worlds, Intersections) else worlds
    if not isinstance(worlds, Mapping) or len(worlds) < 2 or not all(isinstance(k, str) and callable(f) for k, f in worlds.items()):
        raise ValueError(f"Expected argument `worlds` to be an Intersections or a mapping of two or more names to callables "
                         f"x -> x_w but got {worlds!r:.100}")
    _check_x(x)
    names = list(worlds)
    p, p_w, _, classes = _counterfactual_probabilities(model, x, [CallableCounterfactual(worlds[n]) for n in names],
                                                       max_batch_size=max_batch_size, output=output,
                                                       additional_forward_args=additional_forward_args, what="world_gaps")
    return _world_gaps(names, p, p_w, target, classes)


def _world_gaps(names: list[str], p: Tensor, p_w: Tensor, target: int | Tensor | None, classes: str) -> WorldGaps:
    """:func:`world_gaps` from the probabilities on ``x`` ``[N, C]`` and in each world ``[W, N, C]``; ``classes`` what
    the model's outputs are (:func:`~lightning_causal.causal.scm.fairness._counterfactual_probabilities`' fourth)."""
    t = resolve_target(p, target, classes=classes).view(-1, 1)
    delta = (p_w.gather(2, t.expand(len(names), -1, 1)).squeeze(2) - p.gather(1, t).view(1, -1)).double()
    gaps = (delta[:, None, :] - delta[None, :, :]).abs().mean(2)
    a, b = divmod(int(gaps.argmax()), len(names))
    a, b = min(a, b), max(a, b)
    return {"names": names, "delta": delta, "mean_abs": gaps, "worst_pair": (names[a], names[b]), "worst_gap": float(gaps[a, b])}
