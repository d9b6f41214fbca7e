"""Which tensor of a model's return value the estimators explain: ``output=``.

``output`` picks the tensor to explain from what the model returns:

- ``None`` (automatic): a tensor as it is; an object with a ``.logits`` tensor (Hugging Face
  ``ModelOutput``, a ``Categorical`` or ``Bernoulli`` distribution); a mapping with a ``"logits"``
  entry. Anything else, a tuple or a ``Normal`` distribution included, is a ``TypeError`` that names
  ``output=`` (for a distribution: ``"mean"``, ``"variance"``, ``"stddev"``, its entropy, those it computes).
- a ``str``: a key of a mapping, else an attribute;
- an ``int``: an index (tuples, lists);
- a callable ``out -> Tensor``, which must compute each row from that row alone
  (:data:`ROW_WISE_OUTPUT`); a distribution's log-probability of the labels needs them as a forward
  argument (:data:`LOG_PROB_WAY`: named where ``output=`` asks for it).

:class:`~lightning_causal.causal.engine.forward.Forward` applies it to every pass.
"""

from __future__ import annotations

import dataclasses
import inspect
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Distribution

from lightning_causal.causal.engine.batching import first_in_block, said_in_block
from lightning_causal.causal.engine.pass_errors import ended
from lightning_causal.causal.engine.per_sample_results import (
    boxes_way,
    levels_way,
    per_sample_mappings,
    reduction_failed,
    results_way,
    set_columns_read,
    set_columns_warning,
    set_logits_key,
    set_way,
)
from lightning_causal.causal.engine.state import rng_preserved
from lightning_causal.causal.engine.user_frame import outside_package

__all__ = ["OutputSpec", "ROW_WISE_OUTPUT", "TRAINING_ONLY_TUPLE", "check_output_spec", "check_not_a_loss", "check_not_a_row", "check_time_major", "reads_across_samples", "time_major", "time_major_fix", "held_distribution", "held_items",
           "select_output"]

OutputSpec = None | str | int | Callable[[Any], Tensor]


def check_output_spec(output: Any, error: type[Exception] = TypeError) -> OutputSpec:
    """Validate ``output=`` without a model: ``None``, a ``str``, an ``int`` or a callable.

    Args:
        output: the ``output=`` argument: ``None`` (the tensor, or ``logits``), a key or attribute name,
            an index, or a callable ``out -> Tensor``.
        error: the exception type raised for anything else.

    Examples:
        >>> check_output_spec("logits"), check_output_spec(0)
        ('logits', 0)
        >>> check_output_spec(1.5)
        Traceback (most recent call last):
            ...
        TypeError: Expected argument `output` to be None, a key or attribute name (str), an index (int) or a callable out -> Tensor but got 1.5
    """
    if output is None or callable(output) or isinstance(output, str) and output:
        return output
    if isinstance(output, int) and not isinstance(output, bool):
        return output
    raise error(
        f"Expected argument `output` to be None, a key or attribute name (str), an index (int) or a callable "
        f"out -> Tensor but got {output!r}"
    )


def _describe(out: Any) -> str:
    """The model's return value in a few words, naming what ``output=`` can select: a mapping's keys, a
    namedtuple's or a dataclass's fields (``output="reg"``), a tuple's items (``output=1``)."""
    if isinstance(out, Mapping):
        return f"{type(out).__name__} with keys {list(out)[:8]}"
    if isinstance(out, (tuple, list)):
        fields = getattr(out, "_fields", None)  # a namedtuple: its fields are keys too
        named = f" {list(fields)[:8]}" if isinstance(fields, tuple) else ""
        return f"{type(out).__name__} of {len(out)} items{named} ({', '.join(type(o).__name__ for o in out[:4])})"
    if dataclasses.is_dataclass(out) and not isinstance(out, type):
        return f"{type(out).__name__} with fields {[f.name for f in dataclasses.fields(out)][:8]}"
    return type(out).__name__


def held_distribution(out: Any) -> tuple[str, Distribution] | None:
    """The first ``torch.distributions`` object that the return value ``out`` holds (a mapping's value, a tuple's
    item, a dataclass's field) and how a callable reads it (``"out['dist']"``, ``"out[0]"``), or ``None``.

    Args:
        out: the model's return value.

    Examples:
        >>> import torch
        >>> read, dist = held_distribution({"dist": torch.distributions.Normal(torch.zeros(2), 1.0), "h": torch.ones(2)})
        >>> read, type(dist).__name__
        ("out['dist']", 'Normal')
        >>> held_distribution(torch.zeros(2)) is None
        True
    """
    return next(iter(_held_distributions(out)), None)


def held_items(out: Any) -> list[tuple[str, Any]]:
    """The values the return value ``out`` holds (a mapping's values, a tuple's or list's items, a dataclass's fields),
    each with how a callable reads it, in order; none for anything else."""
    if isinstance(out, Mapping):
        return [(f"out[{k!r}]", v) for k, v in out.items()]
    if isinstance(out, (tuple, list)):
        return [(f"out[{i}]", v) for i, v in enumerate(out)]
    if dataclasses.is_dataclass(out) and not isinstance(out, type):
        return [(f"out.{f.name}", getattr(out, f.name)) for f in dataclasses.fields(out)]
    return []


def _held_distributions(out: Any) -> list[tuple[str, Distribution]]:
    """Every ``torch.distributions`` object that the return value ``out`` holds, each with how a callable reads it, in
    order (:func:`held_distribution` gives the first)."""
    return [(read, value) for read, value in held_items(out) if isinstance(value, Distribution)]


def _distribution_reads(read: str, dist: Distribution) -> str:
    """``"`output=lambda out: out['dist'].mean` (the predictive mean; ...)"``: the callables that explain the
    distribution ``dist``, read from the model's return value as ``read``, one tensor at a time."""
    if isinstance(getattr(dist, "logits", None), Tensor):  # Categorical, Bernoulli: log-probabilities
        return f"`output=lambda out: {read}.logits` (the {type(dist).__name__}'s log-probabilities)"
    if not _computes(dist, lambda d: d.mean):
        built = [f"`output=lambda out: {read}.{k}`" for k in _built_from(dist)]
        return (f"`output=` a callable reading the tensors the {type(dist).__name__} at {read} is built from"
                + (f" ({', '.join(built)})" if built else ""))
    spread = [f"`{read}.{name}`" for name in ("variance", "stddev") if _computes(dist, lambda d, n=name: getattr(d, n))]
    return (f"`output=lambda out: {read}.mean` (the {type(dist).__name__}'s predictive mean"
            + (f"; its uncertainty: {' or '.join(spread)}" if spread else "") + "), one audit per tensor, each with its own `name=`")


def _held_choice(out: Any) -> str:
    """``", e.g. `output=lambda out: out['dist'].mean` ..."``: for a return value that holds a distribution beside
    or instead of tensors (``{"dist": Normal(mu, sigma)}``, ``(Normal(mu, sigma), aux)``), the callables that read
    it, or ``""``."""
    held = held_distribution(out)
    return f", e.g. {_distribution_reads(*held)}" if held else ""


LOG_PROB_WAY = (
    "a distribution's log-probability of the labels, `out.log_prob(y)`, reads one label per probe sample: have the "
    "model take them as a forward argument, `forward(self, x, y=None)` returning `dist.log_prob(y)` where `y` is given, "
    "and pass `additional_forward_args={'y': y}` (in a callback `unpack_batch=lambda b: (b[0], b[1], {'y': b[1]})`)")


def _log_prob_way(out: Any) -> str:
    """``"; a distribution's log-probability ..."`` (:data:`LOG_PROB_WAY`) where ``out`` is a distribution or holds
    one, else ``""``."""
    return f"; {LOG_PROB_WAY}" if isinstance(out, Distribution) or held_distribution(out) else ""


def _method_call(output: str, method: Callable[..., Any], out: Any) -> str:
    """``"; `entropy` is a method: call it, ..."``: how to explain what a method named by ``output=`` computes: the
    callable that calls it; for a method that takes a value (a distribution's ``log_prob(value)``, ``cdf``, ``icdf``),
    the callable that calls it with one value for every row (``out.icdf(torch.tensor(0.5))``, the median), and the
    forward argument that brings one value per sample (:data:`LOG_PROB_WAY`)."""
    try:
        params = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: taken as taking none
        params = []  # type: ignore[assignment]
    needs = [p.name for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if not needs:
        return f"; `{output}` is a method: call it, `output=lambda out: out.{output}()`"
    shared = (f"`output=lambda out: out.{output}(torch.tensor(0.5))`" if isinstance(out, Distribution) else
              f"`output=lambda out: out.{output}(...)`")
    way = f": {LOG_PROB_WAY}" if isinstance(out, Distribution) else ": it reaches the model as a forward argument"
    return (f"; `{output}` is a method that takes {', '.join(f'`{n}`' for n in needs)}: call it in a callable with one "
            f"value for every row, {shared}; a value per sample (the labels) cannot come through `output=`, which reads "
            f"the model's return value alone{way}")


def _check_defined(dist: Distribution, output: OutputSpec, picked: Tensor, read: str | None = None, out: Any = None) -> None:
    """``ValueError`` where ``output=`` named a moment of the distribution ``dist`` that torch leaves undefined in
    any row of the model call (:func:`_undefined_rows`): torch's ``Categorical.mean`` and ``.variance`` (its classes
    have no order), a ``Cauchy``'s mean (NaN) and variance (infinite), a ``StudentT``'s mean where its ``df <= 1`` (a
    ``df`` the model computes: some rows only). Those rows' effects would be NaN, silently, and a refusal that waited
    for every row of a call would depend on ``max_batch_size``; the message names the rows and the tensors that
    explain the distribution. A distribution built from NaN (a diverged model's, under ``validate_args=False``)
    passes: its NaN effects are reported, as a tensor model's are (:mod:`~lightning_causal.causal.engine.finite`).
    A callable ``output=`` (``lambda d: d.mean``, ``lambda out: out['dist'].mean``; ``read`` says how it reaches
    ``dist``: ``"out"``, ``"out['dist']"``; ``out``, the model's return value it was called on) is refused alike where
    its value is infinite or NaN as a moment of ``dist`` that is undefined in those rows and its value's own
    (:func:`_undefined_moment`), with the callables that explain the distribution; elsewhere (a ``log_prob`` of
    ``-inf`` beyond the support, a NaN of the callable's own, another distribution's moment) its value is the model's,
    reported."""
    rows = _undefined_rows(dist, picked)
    if not bool(rows.any()):
        return
    moment = output if read is None else _undefined_moment(dist, rows, picked, output, out)
    if moment is None:
        return
    kind = type(dist).__name__
    if read is None:
        built = ", ".join(f"`output={k!r}`" for k in _built_from(dist))
        way = ("its log-probabilities, `.logits` (no `output=`, as for any Categorical), or `output='probs'`"
               if isinstance(getattr(dist, "logits", None), Tensor) else
               f"a tensor it is built from{f' ({built})' if built else ''}, or `output=lambda out: out.icdf(torch.tensor(0.5))`"
               " (its median) where torch computes it")
        subject, value = f"argument `output={output!r}` to select a defined tensor of the {kind} but its `{output}` is", ""
    else:
        built = ", ".join(f"`output=lambda out: {read}.{k}`" for k in _built_from(dist))
        way = (f"its log-probabilities, `output=lambda out: {read}.logits`, or `output=lambda out: {read}.probs`"
               if isinstance(getattr(dist, "logits", None), Tensor) else
               f"a tensor it is built from{f' ({built})' if built else ''}, or `output=lambda out: {read}.icdf(torch.tensor(0.5))`"
               " (its median) where torch computes it")
        where = "the model returns" if read == "out" else f"at {read}"
        subject = f"`output=` (a callable) to return a defined tensor of the {kind} {where} but it returned"
        value = f", where the {kind}'s `{moment}` is undefined"
    bad = picked.detach()[rows] if picked.dim() else picked.detach()
    what = "NaN" if bool(bad.isnan().all()) else "infinite or NaN"
    if bool(rows.all()):
        raise ValueError(f"Expected {subject} {what} everywhere{value} (torch defines none: a Categorical's classes have no "
                         f"order, a Cauchy has no mean), so every effect would be NaN; explain {way}")
    shown = rows.nonzero().flatten().tolist()
    raise ValueError(f"Expected {subject} {what} in rows {shown[:8]}{' ...' if len(shown) > 8 else ''} of the "
                     f"{rows.numel()} of a model call{value + ' and' if value else ', where'} the tensors it is built from are finite (torch defines "
                     f"none there: a StudentT's mean where df <= 1, its variance where df <= 2), so those rows' effects "
                     f"would be NaN; explain {way}")


def _undefined_moment(dist: Distribution, rows: Tensor, picked: Tensor, output: Callable[[Any], Any], out: Any) -> str | None:
    """The first of the distribution ``dist``'s ``mean``, ``stddev`` and ``variance`` that torch leaves undefined in
    every one of ``rows`` (``[N]`` booleans of a model call's rows: :func:`_undefined_rows`), that is infinite or
    NaN where ``picked``, the callable ``output``'s value on the model's return value ``out`` of as many elements, is
    (``d.mean``, ``d.mean[:, None]``, ``2 * d.mean``), and that the callable read (:func:`_reads_moment`), or
    ``None``: a value of other elements, or of NaN of its own shaped like the moment (an empty slice's mean, the log of
    a negative score beside the distribution, another distribution's NaN moment beside it), is the callable's. The
    ``stddev`` comes before the ``variance`` that torch computes it from."""
    for name in ("mean", "stddev", "variance"):
        try:
            value = getattr(dist, name)
        except NotImplementedError:
            continue
        if not isinstance(value, Tensor):
            continue
        undefined = _undefined_rows(dist, value).reshape(-1)
        if (undefined.numel() == rows.numel() and bool(undefined[rows.reshape(-1)].all()) and value.numel() == picked.numel()
                and bool((value.detach().reshape(-1).isfinite() == picked.detach().reshape(-1).isfinite().to(value.device)).all())
                and _reads_moment(dist, name, value, output, out, rows, picked)):
            return name
    return None


def _reads_moment(dist: Distribution, name: str, value: Tensor, output: Callable[[Any], Any], out: Any, rows: Tensor,
                  picked: Tensor) -> bool:
    """Whether the callable ``output``'s non-finite ``rows`` of ``picked`` come from ``dist``'s moment ``name``
    (``value``): called again on ``out`` with that moment made finite (0 where undefined; ``dist``'s class swapped for
    a subclass of it for the call, then back: the very object ``out`` holds), those rows are finite. The global random
    number generators (torch's, NumPy's, ``random``'s) are put back after the call (:func:`~.state.rng_preserved`): a
    callable that draws (``d.mean + noise``) leaves them as its one call did; a count the callable keeps of its own
    calls counts these too."""
    cls = type(dist)
    finite = torch.where(value.detach().isfinite(), value.detach(), torch.zeros((), dtype=value.dtype, device=value.device))
    dist.__class__ = type(cls.__name__, (cls,), {name: property(lambda self: finite)})
    try:
        with torch.no_grad(), rng_preserved():
            again = output(out)
    except Exception:  # the callable fails on the finite moment: not shown to read it
        return False
    finally:
        dist.__class__ = cls
    if not isinstance(again, Tensor) or again.shape != picked.shape:
        return False
    n = picked.shape[0] if picked.dim() else 1
    left = ~again.detach().reshape(n, -1).isfinite().all(1)
    return not bool((left & rows.reshape(-1).to(left.device)).any())


def _pairwise_name(key: Any) -> bool:
    """Whether an output's key or field names a score of pairs: ``logits_per_image``/``logits_per_text`` (CLIP),
    a ``similarity`` or ``sim`` matrix; a square tensor of another name (or an index) may be a classifier's logits on
    as many rows as classes.

    Examples:
        >>> _pairwise_name("logits_per_image"), _pairwise_name("similarity"), _pairwise_name("y_hat"), _pairwise_name(0)
        (True, True, False, False)
    """
    if not isinstance(key, str):
        return False
    key = key.lower()
    return "_per_" in key or key.startswith("per_") or "similarit" in key or key in ("sim", "sims") or key.endswith("_sim")


def _first_choice(out: Any) -> str:
    """``", e.g. `output='cls'`"``: the first tensor of samples the return value ``out`` holds, by its key, field
    or index (the head a user of a model of several outputs picks for each audit), or ``""``. A 0-dim value is no
    output of samples (the loss of a model given its labels, ``(loss, logits)``): passed over, and named. A square
    ``[n, n, ...]`` tensor whose name says it scores pairs (:func:`_pairwise_name`: a CLIP-like model's
    ``logits_per_image``, row i scoring every caption of its batch, whose width follows the batch and which the checks
    refuse as such) comes after the others, and where every tensor is one, its diagonal is named (each row's own item),
    the tensor itself only where its ``n`` columns are classes. A square tensor of another name (a classifier's logits on
    a probe of as many rows as classes) keeps its place.

    Examples:
        >>> import torch
        >>> print(_first_choice((torch.tensor(0.7), torch.zeros(4, 3))))
        , e.g. `output=1` (one audit per output, each with its own `name=`; `output=0` is a 0-dim value, such as the loss a model computes from the labels passed to it, not a score per sample)
        >>> print(_first_choice({"logits_per_image": torch.zeros(4, 4), "logits_per_text": torch.zeros(4, 4)}))
        , e.g. `output=lambda out: out['logits_per_image'].diagonal()[:, None]` (each row's own item: a square [4, 4] tensor is an in-batch score matrix where row i scores every item of its batch, whose width follows the batch; `output='logits_per_image'` only where its 4 columns are classes; one audit per output, each with its own `name=`)
    """
    if isinstance(out, Mapping):
        items: list[tuple[Any, Any]] = list(out.items())
    elif isinstance(out, (tuple, list)):
        fields = getattr(out, "_fields", None)
        items = [(fields[i] if isinstance(fields, tuple) else i, v) for i, v in enumerate(out)]
    elif dataclasses.is_dataclass(out) and not isinstance(out, type):
        items = [(f.name, getattr(out, f.name)) for f in dataclasses.fields(out)]
    else:
        return ""
    names = [k for k, v in items if isinstance(v, Tensor) and v.dim()]
    square = {k for k, v in items if isinstance(v, Tensor) and v.dim() >= 2 and v.shape[0] == v.shape[1] and _pairwise_name(k)}
    names = [k for k in names if k not in square] + [k for k in names if k in square]
    scalars = [k for k, v in items if isinstance(v, Tensor) and not v.dim()]
    scalar = (f"; `output={scalars[0]!r}` is a 0-dim value, such as the loss a model computes from the labels passed to "
              "it, not a score per sample") if scalars else ""
    if names and names[0] in square:  # an in-batch score matrix, or as many classes as rows
        n = dict(items)[names[0]].shape[0]
        read = f"out[{names[0]!r}]" if isinstance(out, Mapping) else f"getattr(out, {names[0]!r})"  # a name: _pairwise_name
        return (f", e.g. `output=lambda out: {read}.diagonal()[:, None]` (each row's own item: a square [{n}, {n}] tensor "
                "is an in-batch score matrix where row i scores every item of its batch, whose width follows the batch; "
                f"`output={names[0]!r}` only where its {n} columns are classes; one audit per output, each with its own "
                f"`name=`{scalar})")
    return f", e.g. `output={names[0]!r}` (one audit per output, each with its own `name=`{scalar})" if names else ""


def _exits_choice(out: Any) -> str:
    """``", e.g. `output=0` ... one per exit"``: for a tuple or list of several tensors of one shape with rows and
    columns (a multi-exit network's logits at each exit, deep-supervision heads), that ``output=0`` takes the first of
    them only, and the selection of each; else ``""``."""
    if not isinstance(out, (tuple, list)) or hasattr(out, "_fields") or len(out) < 2:
        return ""
    if not all(isinstance(o, Tensor) and o.dim() >= 2 and o.shape == out[0].shape for o in out):
        return ""
    return (f", e.g. `output=0`: {len(out)} tensors of one shape {tuple(out[0].shape)} are outputs of their own (one "
            "audit per output, each with its own `name=`; a mean and a variance, start and end logits); if they are a "
            "multi-exit network's exits, deep-supervision or auxiliary heads, `output=0` explains or repairs the first "
            "only (a backdoor suppressed at exit 0 stays at the others, which an early exit in eval mode still takes): "
            "one repair term or audit per exit, `output=lambda out: out[k] if isinstance(out, (tuple, list)) else out` "
            "each with its own `name=`")


def _distribution_choice(out: Any) -> str:
    """``", e.g. `output='mean'` ..."``: for a ``torch.distributions`` object (``return Normal(mu, sigma)``),
    the tensors that explain its prediction and its uncertainty apart, those of them it computes (torch leaves the
    mean of a ``TransformedDistribution`` unimplemented, the entropy of a ``MixtureSameFamily``), or ``""``. A
    distribution with a ``.logits`` tensor (``Categorical``, ``Bernoulli``) is explained through those without
    ``output=``."""
    if not isinstance(out, Distribution):
        return ""
    has = {name for name, get in (("mean", lambda d: d.mean), ("variance", lambda d: d.variance),
                                  ("stddev", lambda d: d.stddev), ("entropy", lambda d: d.entropy()))
           if _computes(out, get)}
    spread = [f"`output='{name}'`" for name in ("variance", "stddev") if name in has]
    spread += ["`output=lambda out: out.entropy()` (one value per row)"] if "entropy" in has else []
    if "mean" not in has:
        base = getattr(out, "base_dist", None)
        built = ", ".join(f"`output={k!r}`" for k in _built_from(out))
        way = ("explain the distribution it transforms, e.g. `output=lambda out: out.base_dist.mean`"
               if isinstance(base, Distribution) and _computes(base, lambda d: d.mean) else
               f"explain the tensors it is built from{f' ({built})' if built else ''}")
        return f"; torch computes no mean of a {type(out).__name__}: {way}"
    uncertainty = f"; its uncertainty: {', '.join(spread[:-1])} or {spread[-1]}" if len(spread) > 1 else (
        f"; its uncertainty: {spread[0]}" if spread else "")
    return (f", e.g. `output='mean'` (the predictive mean){uncertainty}; a torch.distributions object is explained "
            "through one tensor at a time: one audit per tensor, each with its own `name=`")


def _computes(dist: Any, get: Callable[[Any], Any]) -> bool:
    """Whether ``get(dist)`` gives a tensor that torch defines (torch raises ``NotImplementedError`` for what a
    distribution lacks, and gives a ``Cauchy``'s mean as NaN: :func:`_undefined`)."""
    try:
        value = get(dist)
    except NotImplementedError:
        return False
    return isinstance(value, Tensor) and not (isinstance(dist, Distribution) and _undefined(dist, value))


def _built_from(dist: Distribution) -> list[str]:
    """The names of the floating tensors the distribution ``dist`` was built from, those of its ``arg_constraints``
    set on it: ``["loc", "scale"]`` of a ``Normal``, ``["logits"]`` of a ``Categorical(logits=...)``."""
    return [k for k in getattr(dist, "arg_constraints", {}) if isinstance(v := dist.__dict__.get(k), Tensor) and v.is_floating_point()]


def _undefined(dist: Distribution, value: Tensor) -> bool:
    """Whether ``value``, a tensor of the distribution ``dist``, is nowhere finite while the tensors ``dist`` is built
    from are (:func:`_built_from`): torch defines none (a ``Categorical``'s mean, NaN; a ``Cauchy``'s mean, NaN, and
    variance, infinite). A distribution built from NaN (a diverged model's) gives NaN that torch does define."""
    if not value.is_floating_point() or value.numel() == 0 or bool(value.isfinite().any()):
        return False
    return all(bool(getattr(dist, k).isfinite().all()) for k in _built_from(dist))


def _undefined_rows(dist: Distribution, value: Tensor) -> Tensor:
    """Which rows (dimension 0) of ``value``, a tensor of the distribution ``dist``, torch leaves undefined: ``[N]``
    booleans, true where the row holds an infinite or NaN entry while the row's entries of the tensors ``dist`` is
    built from are finite (:func:`_built_from`; one broadcast over the rows counts for each). A 0-d ``value`` is one
    row. A row built from NaN (a diverged model's) is not undefined: its NaN is the model's."""
    if not value.is_floating_point() or value.numel() == 0:
        return value.new_zeros(value.shape[:1], dtype=torch.bool)
    n = value.shape[0] if value.dim() else 1
    rows = ~value.detach().reshape(n, -1).isfinite().all(1)
    for k in _built_from(dist):
        t = getattr(dist, k).detach()
        if t.dim() and t.shape[0] == n:
            rows &= t.reshape(n, -1).isfinite().all(1).to(rows.device)
        elif not bool(t.isfinite().all()):
            rows &= False
    return rows if value.dim() else rows.reshape(())


def _base_attribute(out: Any, output: Any, err: Exception) -> str:
    """The way to an attribute a wrapping distribution lacks and its base holds (``output="logits"`` of an
    ``Independent(Bernoulli(logits=...))``: ``out.base_dist.logits``); ``""`` otherwise."""
    base = getattr(out, "base_dist", None)
    if not (isinstance(err, AttributeError) and isinstance(output, str) and output.isidentifier() and base is not None
            and isinstance(getattr(base, output, None), Tensor)):
        return ""
    return (f"; its base distribution ({type(base).__name__}) holds `{output}`: pass "
            f"`output=lambda out: out.base_dist.{output}`")


def select_output(out: Any, output: OutputSpec = None) -> Tensor:
    """The tensor that ``output`` selects from the model's return value ``out``.

    Args:
        out: the model's return value: a tensor, a mapping, a tuple or list, or an object with
            attributes.
        output: which tensor of it, as in :func:`check_output_spec`; ``None``: ``out`` itself when a
            tensor, else its ``logits``.

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
        if (key := set_logits_key(out)) is not None:  # DETR: its (pred_)logits [N, Q, C + 1], one row per query
            raise TypeError(f"Expected the model to return a tensor, an object with a `.logits` tensor or a mapping with "
                            f"'logits' of one row per sample but got {_describe(out)}: {set_way(out, key)}")
        if isinstance(out, Mapping) and isinstance(out.get("logits"), Tensor):
            return out["logits"]
        if not isinstance(out, Mapping) and isinstance(getattr(out, "logits", None), Tensor):
            return out.logits
        if per_sample_mappings(out):  # a detector's per-image dicts: no tuple of heads
            raise TypeError(f"Expected the model to return a tensor, an object with a `.logits` tensor or a mapping with "
                            f"'logits' but got {_describe(out)}: {results_way(out)}")
        aux = f" ({TRAINING_ONLY_TUPLE})" if isinstance(out, (tuple, list)) and not hasattr(out, "_fields") and not (
            out and isinstance(out[0], Tensor) and not out[0].dim()) else ""  # (loss, logits): out[0] is no logits
        raise TypeError(
            f"Expected the model to return a tensor, an object with a `.logits` tensor or a mapping with 'logits' "
            f"but got {_describe(out)}; pass `output=` (a key, an index or a callable out -> Tensor) to choose the "
            f"tensor{_held_choice(out) or _exits_choice(out) or _first_choice(out) or _distribution_choice(out)}{aux}"
        )
    if isinstance(output, str) and isinstance(out, Tensor):  # getattr would pick a method (or .T, the transpose)
        raise TypeError(f"Expected argument `output={output!r}` to name an entry of a mapping or an attribute of the model's "
                        f"output object but the model returns {_describe(out)}: a name selects nothing from a tensor; pass "
                        "no `output=` (the tensor is explained), an index or a callable out -> Tensor")
    try:
        if callable(output):
            try:
                picked = output(out)
            except RuntimeError as err:  # a shape mismatch: mostly a tensor of the probe's samples read by the callable
                if type(err) is not RuntimeError:  # torch.OutOfMemoryError and the like keep their type (batch halving)
                    raise
                if per_sample_mappings(out):  # a detector's per-image dicts: no tensor of the samples to read
                    raise RuntimeError(f"{str(err).rstrip('.')}: {reduction_failed(out, err)}") from err
                raise RuntimeError(f"{ended(err)} {ROW_WISE_OUTPUT}{_log_prob_way(out)}") from err
            except ValueError as err:  # torch.distributions' check of a value of other rows: `out.log_prob(y)`
                if type(err) is not ValueError:
                    raise
                raise ValueError(f"{ended(err)} {ROW_WISE_OUTPUT}{_log_prob_way(out)}") from err
        elif isinstance(output, str):
            picked = out[output] if isinstance(out, Mapping) else getattr(out, output)
        else:
            picked = out[output]
    except (KeyError, IndexError, AttributeError, TypeError, NotImplementedError) as err:
        # an IndexError of a callable: mostly an index of one entry per probe sample (a position per sentence); a
        # distribution's mean or entropy that torch leaves unimplemented: what it does compute
        hint = f". {ROW_WISE_OUTPUT}" if callable(output) and isinstance(err, IndexError) else (
            _distribution_choice(out) if isinstance(err, NotImplementedError) else _base_attribute(out, output, err))
        if not callable(output) and per_sample_mappings(out):  # output='scores' of a detector's per-image dicts
            hint = f": {results_way(out)}"
        raise TypeError(f"Expected argument `output={output!r}` to select a tensor from {_describe(out)} but it failed: {err!r}{hint}") from err
    if not isinstance(picked, Tensor):
        # a method named by a string (`output="entropy"` of a distribution) is not called: name the callable that calls it
        call = (_method_call(output, picked, out) if isinstance(output, str) and callable(picked) and output.isidentifier()
                else "")
        if isinstance(picked, Distribution):  # a head that is a distribution: one tensor of it
            read = (f"out[{output!r}]" if isinstance(out, (Mapping, tuple, list)) else f"out.{output}") if not callable(
                output) else None
            call = (f"; explain one tensor of it, e.g. {_distribution_reads(read, picked)}" if read else
                    f"; take one tensor of the {type(picked).__name__} in the callable (its `.mean`, `.variance`)")
        if per_sample_mappings(out):  # out[0] of a detector's per-image dicts: the first image's result
            call = f": {results_way(out)}"
        elif not callable(output):  # output='cls' of a feature pyramid's class maps, one per level
            call = levels_way(f"out[{output!r}]" if isinstance(out, (Mapping, tuple, list)) else f"out.{output}",
                              picked) or call
        raise TypeError(f"Expected argument `output={output!r}` to select a tensor from {_describe(out)} but got "
                        f"{type(picked).__name__}{call}")
    if not callable(output) and picked.dim() == 3 and (key := set_logits_key(out)) is not None and picked is (
            out[key] if isinstance(out, Mapping) else getattr(out, key)):  # output='pred_logits' of a DETR
        raise ValueError(f"Expected argument `output={output!r}` to select [N] or [N, classes] from {_describe(out)} but "
                         f"got shape {tuple(picked.shape)}: {set_way(out, key)}")
    if not callable(output) and picked.dim() == 3 and (key := set_logits_key(out)) is not None and picked is (
            out["pred_boxes"] if isinstance(out, Mapping) else out.pred_boxes):  # output='pred_boxes' of a DETR
        raise ValueError(f"Expected argument `output={output!r}` to select [N] or [N, outputs] from {_describe(out)} but "
                         f"got shape {tuple(picked.shape)}: {boxes_way(out, key)}")
    if isinstance(out, Distribution) and isinstance(output, str):
        _check_defined(out, output, picked)
    elif callable(output):  # a moment read by a callable: the same refusal, of whichever distribution it read
        for read, dist in [("out", out)] if isinstance(out, Distribution) else _held_distributions(out):
            _check_defined(dist, output, picked, read=read, out=out)
    if callable(output) and isinstance(picked, Tensor) and not said_in_block("set_no_object") and (
            key := set_logits_key(out)) is not None and set_columns_read(out, key, picked) and first_in_block("set_no_object"):  # C + 1 columns, not sigmoid scores nor a box
        warnings.warn(set_columns_warning(out, key), UserWarning, stacklevel=outside_package())
    if callable(output) and picked.dim() and picked.shape[0] > 1 and _one_row(out):
        # a pass of one row whose selected output has several: the callable broadcast the row against a tensor of
        # its own (one entry per probe sample), so every row but one would be another sample's number
        raise ValueError(
            f"Expected the explained output to have one row per input row (1) but `output=` returned shape "
            f"{tuple(picked.shape)} for a pass of one row. {ROW_WISE_OUTPUT}")
    return picked


TRAINING_ONLY_TUPLE = (
    "a model that returns a tuple in training mode only, an auxiliary head beside the logits (`if self.training: return "
    "logits, aux`), returns one tensor in eval mode, where the audits run: "
    "`output=lambda out: out[0] if isinstance(out, (tuple, list)) else out` takes the logits in both modes")

#: what a selection of element 0 misses where the training-mode tuple or list holds a multi-exit network's exits
EXITS_IN_TRAINING = ("; a multi-exit network's exits, a list of logits in training mode, are an output each: `out[0]` "
                     "is the first exit only, so one repair term or audit per exit, `out[k]`, each with its own `name=`")


def check_not_a_row(raw: Any, picked: Tensor, output: OutputSpec, rows: int) -> None:
    """``ValueError`` when ``output`` took a row of the model's return value ``raw``, itself one
    tensor of ``rows`` rows, where an element of a tuple was meant (``output=0`` or ``lambda out:
    out[0]`` for ``(logits, aux)``): the selected tensor is ``raw``'s row (shape ``raw.shape[1:]``),
    the first sample's outputs read as every sample's. An index always takes a row of a tensor; a
    callable is refused where the row count tells (a column of a square output is kept). A model that returns a tuple in training mode
    only returns such a tensor in eval mode; the message says how to select in both modes.

    Examples:
        >>> import torch
        >>> check_not_a_row(torch.zeros(4, 3), torch.zeros(3), 0, 4)
        Traceback (most recent call last):
        ...
        ValueError: Expected the explained output to have one row per input row (4) but `output=0` indexed the model's output, ...
    """
    if output is None or not isinstance(raw, Tensor) or raw.dim() == 0 or raw.shape[0] != rows or picked.shape != raw.shape[1:]:
        return
    index = isinstance(output, int)
    if not index and picked.dim() and picked.shape[0] == rows:
        return  # a callable that kept a row per row: a column of a square output (out[:, 0] of [C, C])
    column = f" (a column: `output=lambda out: out[:, {output}:{output + 1}]`)" if index else ""
    raise ValueError(
        f"Expected the explained output to have one row per input row ({rows}) but `output={output if index else '...'}` "
        f"indexed the model's output, itself a tensor of shape {tuple(raw.shape)}, and took {f'its row {output}' if index else 'a row'} "
        f"(shape {tuple(picked.shape)}); a model that returns one tensor needs no `output=`{column}; {TRAINING_ONLY_TUPLE}"
        f"{EXITS_IN_TRAINING}")



def check_not_a_loss(raw: Any, picked: Tensor, output: OutputSpec, rows: int) -> None:
    """``ValueError`` when ``output`` picked a 0-dim value (``picked``) of the model's return value ``raw``, a tuple,
    mapping or dataclass that holds tensors of ``rows`` rows: a scalar such as the loss a model computes from labels it
    is given (a Hugging Face model called with ``labels=`` and ``return_dict=False`` returns ``(loss, logits, ...)``,
    whose element 0 is the loss; a ``forward(x, y)`` returning ``{"loss": ..., "logits": ...}``), not a score per
    sample. The message names where the return value holds its rows (``output=1``, ``output='logits'``).

    Examples:
        >>> import torch
        >>> check_not_a_loss((torch.tensor(0.7), torch.zeros(4, 3)), torch.tensor(0.7), 0, 4)
        Traceback (most recent call last):
        ...
        ValueError: Expected the explained output to have one row per input row (4) but `output=0` picked a 0-dim value ...
        >>> check_not_a_loss((torch.zeros(4, 3),), torch.zeros(4, 3), 0, 4)  # the logits: nothing said
    """
    if not isinstance(picked, Tensor) or picked.dim() != 0 or isinstance(raw, Tensor):
        return
    rowed = [read[len("out"):] for read, value in held_items(raw)
             if isinstance(value, Tensor) and value.dim() and value.shape[0] == rows]
    if not rowed:
        return
    ways = " or ".join(f"`output={w[1:-1] if w.startswith('[') else repr(w[1:])}`" for w in rowed[:3])
    raise ValueError(
        f"Expected the explained output to have one row per input row ({rows}) but `output="
        f"{repr(output) if isinstance(output, (int, str)) else '...'}` picked a 0-dim value of the model's {_describe(raw)}: a "
        "scalar such as the loss a model computes from the labels it is given (a Hugging Face model called with "
        "`labels=` returns `(loss, logits, ...)` where `return_dict=False`; a `forward(x, y)` returning {'loss', "
        f"'logits'}}), not a score per sample; what it returns holds one row per input row at {ways}")


def time_major(raw: Any, rows: int) -> tuple[int, ...] | None:
    """The shape of ``raw``, a model's return value on ``rows`` rows, where it holds its time steps first,
    ``[T, N, ...]`` (``rows`` entries along dimension 1, another number but 1 along dimension 0), else ``None``.

    Examples:
        >>> import torch
        >>> time_major(torch.zeros(30, 4, 7), 4), time_major(torch.zeros(4, 30, 7), 4)
        ((30, 4, 7), None)
    """
    if not isinstance(raw, Tensor) or raw.dim() < 3 or raw.shape[1] != rows or raw.shape[0] in (1, rows):
        return None
    return tuple(raw.shape)


def time_major_fix(shape: tuple[int, ...]) -> str:
    """What to pass for a model that returns ``shape``, its time steps first (:func:`time_major`)."""
    return (f"the model returns {shape}: its time steps first, [T, N, C] (log-probabilities laid out for F.ctc_loss, a "
            f"layer built with batch_first=False), whose dimension 1 holds the {shape[1]} samples and dimension 0 the "
            f"{shape[0]} steps (or, of a recurrent layer's final state h_n [layers x directions, N, H], its layers: "
            "`output=lambda out: out[-1]` for the last layer's). Pass `output=` a callable that keeps the samples first: "
            "`output=lambda out: out[t]` for "
            "the class scores of step t ([N, C]; `target=` the class, e.g. a token), or `lambda out: out.transpose(0, 1)"
            "[:, a:b].mean(1)` for steps a to b; not `out.mean(1)` nor `out.view(-1, T, C)`, which read the steps as "
            "samples or mix them. A score of the whole sequence that reads each sample's own labels or length (the CTC "
            "log-likelihood of a transcript) needs them as forward arguments of a wrapper model (docs/your_model.md, "
            "'Speech recognition: CTC models')")


def reads_across_samples(output: Callable[[Any], Tensor], raw: Tensor) -> bool:
    """Whether the callable ``output`` computes the rows it returns for a time-major ``raw`` (``[T, N, ...]``,
    :func:`time_major`) from other samples too: what it returns on the whole differs from what it returns on each
    sample alone (``raw[:, k:k+1]``), or fails there (``out.view(-1, T, C)`` or ``out.mean(1)``, not ``out[t]``).

    Examples:
        >>> import torch
        >>> raw = torch.randn(9, 2, 4)
        >>> reads_across_samples(lambda out: out[3], raw), reads_across_samples(lambda out: out.view(-1, 9, 4).mean(1), raw)
        (False, True)
    """
    try:
        with torch.no_grad():
            whole = output(raw)
            parts = [output(raw[:, k: k + 1]) for k in range(raw.shape[1])]  # the trial rows: two samples
    except Exception:  # noqa: BLE001 - a callable that fails on one sample reads its batch's layout
        return True
    if not isinstance(whole, Tensor) or not all(isinstance(p, Tensor) and p.shape[:1] == (1,) for p in parts):
        return True
    alone = torch.cat(parts)
    return alone.shape != whole.shape or not torch.allclose(alone.double(), whole.double(), rtol=1e-4, atol=1e-6,
                                                            equal_nan=True)


def check_time_major(raw: Any, picked: Tensor, rows: int) -> None:
    """``ValueError`` when the model returns its time steps first, ``[T, N, ...]`` (:func:`time_major`; of a return
    value that is no tensor, ``picked``), and the explained tensor ``picked`` has not one row per input row. The usual
    fixes for per-position scores, ``out.mean(1)`` or ``out.view(-1, T, C)``, would read such an output as ``T``
    samples or mix the samples with the time steps, so the message names the ones that keep the samples apart.

    Examples:
        >>> import torch
        >>> check_time_major(torch.zeros(30, 4, 7), torch.zeros(30, 4, 7), 4)
        Traceback (most recent call last):
        ...
        ValueError: Expected the explained output to have one row per input row (4) but got shape (30, 4, 7): the model ...
    """
    shape = time_major(raw if isinstance(raw, Tensor) else picked, rows)
    if shape is not None:
        raise ValueError(f"Expected the explained output to have one row per input row ({rows}) but got shape "
                         f"{tuple(picked.shape)}: {time_major_fix(shape)}")

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
