"""The do-operator as forward hooks: :func:`intervene` (a context manager replacing named modules'
outputs by interventions, exactly its own handles removed in ``finally``) and :func:`capture` (the
named modules' outputs recorded); a site that never runs in a pass is named in one warning.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence

from torch import Tensor, nn

from lightning_causal.causal.engine.eager import check_eager_possible, force_eager
from lightning_causal.causal.engine.head_sites import check_head_width, check_heads
from lightning_causal.causal.engine.input_sites import input_sites
from lightning_causal.causal.engine.kept_attributes import dict_attributes, written_tensors
from lightning_causal.causal.engine.module_sites import (
    module_output,
    replace_output,
    resolve_module,
    resolve_modules,
)
from lightning_causal.causal.engine.quantized import check_not_quantized
from lightning_causal.causal.engine.unit_interventions import (
    Intervention,
    Patch,
    repeated_patch_error,
)
from lightning_causal.causal.engine.unit_sites import check_not_vmapped, check_unit_dimension
from lightning_causal.causal.engine.user_frame import outside_package

__all__ = ["FEWER_ROWS_FIX", "CachedInterventionWarning", "OTHER_ROWS_CAUSE", "RepeatedCallsWarning", "UnreachedSiteWarning", "capture", "fewer_rows",
           "fewer_rows_cause", "intervene"]


class UnreachedSiteWarning(UserWarning):
    """The warning that a module named to :func:`intervene` or :func:`capture` did not run in the model's forward
    pass (``nn.MultiheadAttention.out_proj``, whose weight the model uses in functional code). Its own category, so
    that callers that leave such modules out themselves filter it by what it is, not by its wording."""


class CachedInterventionWarning(UserWarning):
    """The warning that the passes of an :func:`intervene` block wrote tensors into a dict the model holds (a cache of
    generated weights), which outlive the block."""


class RepeatedCallsWarning(UserWarning):
    """The warning that a module named to :func:`capture` runs more than once per forward pass (capture keeps its
    last call's output). Its own category, so that callers that say it in their own words filter it by what it is,
    not by its wording."""


#: where to name a site instead of a module called again on some of its rows only (:func:`fewer_rows_cause`)
FEWER_ROWS_FIX = "an `nn.Identity` applied to the whole state where the rows are put back together, at every step"
#: the cause of a module's later call in a pass that returned other rows than its first, not fewer (the unit
#: estimators' refusal, the layer map's note): a module called again on more rows, a stack or a flattening of them
OTHER_ROWS_CAUSE = "a module shared across inputs of other shapes (rows flattened into the batch)"


def fewer_rows(rows: int | None, first: int | None) -> bool:
    """Whether a module's later call in a forward pass returned fewer rows (``rows``) than its first call (``first``;
    ``None``: an output without rows): a block repeated on the rows not yet halted. The test of :func:`capture`'s
    warning, the unit estimators' refusal (``effects/unit_rows.py``) and the layer map's note.

    Args:
        rows: the rows of the later call's output.
        first: the rows of the first call's output.

    Examples:
        >>> fewer_rows(2, 4), fewer_rows(0, 4), fewer_rows(4, 4), fewer_rows(None, 4)
        (True, True, False, False)
    """
    return rows is not None and first is not None and rows < first


def fewer_rows_cause(rows: int, first: int) -> str:
    """The words for a module's later call in a forward pass that returned ``rows`` rows where its first call returned
    ``first`` (:func:`fewer_rows`), one text for :func:`capture`'s warning, the unit estimators' refusal and the layer
    map's note; each names the site instead with :data:`FEWER_ROWS_FIX`.

    Args:
        rows: the rows of the later call's output.
        first: the rows of the first call's output.

    Examples:
        >>> print(fewer_rows_cause(2, 4))  # doctest: +ELLIPSIS
        2 rows where its first call returned 4: a module called again on some of its rows only (a block repeated on ...
    """
    return (f"{rows} rows where its first call returned {first}: a module called again on some of its rows only (a block "
            "repeated on the rows not yet halted, a branch taken by some rows), whose later calls' rows are not the "
            "pass's samples")


def _check_sites(model: nn.Module, sites: Mapping[str, object], kind: type | tuple) -> dict[str, nn.Module]:
    if not isinstance(model, nn.Module):
        raise TypeError(f"Expected argument `model` to be a torch.nn.Module but got {type(model)}")
    resolved = {}
    for name, value in sites.items():
        if not isinstance(value, kind):
            raise TypeError(f"Expected an Intervention for module {name!r} but got {type(value)}")
        resolved[name] = resolve_module(model, name)
    return resolved


def _warn_unreached(model: nn.Module, modules: Mapping[str, nn.Module], what: str) -> list:
    """Hooks that warn, once per site, after a forward pass of ``model`` in which a named module
    never ran (hooks on it do nothing: e.g. the ``out_proj`` of ``nn.MultiheadAttention``, whose
    weight the attention uses in functional code). Register them after the sites' own hooks."""
    ran: set[str] = set()
    warned: set[str] = set()

    def start(*_: object) -> None:
        ran.clear()

    def end(*_: object) -> None:
        for name in modules:
            if name not in ran and name not in warned:
                warned.add(name)
                warnings.warn(f"Module {name!r} did not run in the model's forward pass, so {what} on it had no effect "
                              "(a module whose weights the model uses in functional code, such as the out_proj of "
                              "torch.nn.MultiheadAttention, never runs; that out_proj's input, the heads, is the site "
                              "'<attention>.out_proj:input'; a module whose output the model keeps from an earlier pass "
                              "and reads instead (a hypernetwork's weights cached per task id) runs only where the cache "
                              "misses: a value cached before the block is not intervened on; clear the cache before the "
                              "block)", UnreachedSiteWarning, stacklevel=outside_package())

    handles = [model.register_forward_pre_hook(start)]
    handles += [m.register_forward_hook(lambda *_, n=name: ran.add(n)) for name, m in modules.items()]
    return handles + [model.register_forward_hook(end)]


def _warn_cached(model: nn.Module, caches: list | None, names: list[str]) -> None:
    """Warn where the passes of :func:`intervene`'s block wrote tensors into a dict the model holds (``caches``, from
    :func:`~lightning_causal.causal.engine.kept_attributes.dict_attributes` before the block): a hypernetwork's weights
    cached per task id, computed under the intervention, which every later pass would read. Not put back: a dict of
    activations the forward records for the user to read after the block is written so too."""
    written = written_tensors(model, caches) if caches else []
    if written:
        shown = ", ".join(written[:4]) + (f" and {len(written) - 4} more" if len(written) > 4 else "")
        clear = " and ".join(f"`model.{d}.clear()`" for d in dict.fromkeys(w.split("[")[0] for w in written))
        warnings.warn(f"The model wrote tensors into {shown} during the intervention on {names}, which stay there after "
                      "the block: if the forward reads them again (a cache of generated weights per task id), every later "
                      f"pass gives the intervened model's outputs; clear them after the block ({clear}), or switch the "
                      "cache off while you intervene", CachedInterventionWarning, stacklevel=outside_package())


def _refuse_repeated_patch(model: nn.Module, modules: Mapping[str, nn.Module]) -> list:
    """Hooks that refuse, at the end of a forward pass of ``model``, a :class:`Patch` site that ran more than once in it
    (:func:`repeated_patch_error`, the refusal of ``unit_effects`` too): its one source row per sample set every call.
    The pass's output is not returned. Register them with the sites' own hooks."""
    calls: dict[str, int] = {}

    def start(*_: object) -> None:
        calls.clear()

    def end(*_: object) -> None:
        for name, count in calls.items():
            if count > 1:
                raise repeated_patch_error(name, count)

    def seen(name: str) -> None:
        calls[name] = calls.get(name, 0) + 1

    handles = [model.register_forward_pre_hook(start)]
    handles += [m.register_forward_hook(lambda *_, n=name: seen(n)) for name, m in modules.items()]
    return handles + [model.register_forward_hook(end)]


def _apply(iv: Intervention, value: object, name: str) -> Tensor:
    """``iv`` applied to ``value``, the output of module ``name``; an output without units (``[N]``)
    is refused naming the module, unless ``iv`` replaces outputs its own way (its own ``__call__``)."""
    if isinstance(value, Tensor) and type(iv).__call__ is Intervention.__call__:
        check_not_vmapped(name, value)  # one sample at a time, under torch.func.vmap: no row, no unit dimension
    if isinstance(value, Tensor) and value.dim() < 2 and type(iv).__call__ is Intervention.__call__:
        check_unit_dimension(name, value.shape)
    if isinstance(value, Tensor):
        check_not_quantized(name, value)  # a statically quantized model: torch's own error names no site
    return iv(value)


def _replacing_hook(model: nn.Module, name: str, iv: Intervention) -> Callable[..., object]:
    """The forward hook of :func:`intervene` at ``name``: the output replaced by ``iv``. At its first call, an
    intervention per head warns where its slices are parts of heads (:func:`check_head_width`: the width is known
    only from the output, e.g. a grouped-query ``v_proj`` holds fewer heads than the model has)."""
    num_heads = getattr(iv, "num_heads", None)
    checked = num_heads is None

    def hook(_m: nn.Module, _i: object, out: object) -> object:
        nonlocal checked
        value = module_output(out, name)
        if not checked and isinstance(value, Tensor):
            checked = True
            unit_dim = getattr(iv, "unit_dim", None)
            dim = -1 if unit_dim is None else unit_dim
            if -value.dim() <= dim < value.dim():
                check_head_width(model, name, num_heads, value.shape[dim])
        return replace_output(out, _apply(iv, value, name))

    return hook


@contextlib.contextmanager
def intervene(model: nn.Module, interventions: Mapping[str, Intervention]) -> Iterator[nn.Module]:
    """Apply interventions on named modules for the duration of the ``with`` block.

    Registers one forward hook per site that replaces the module's output; exactly those handles
    are removed on exit, also on exceptions and ``KeyboardInterrupt``. Other hooks are untouched.
    An intervention per head (``num_heads=``) is refused up front where slices of the output are no
    heads (an output projection, a ``torch.nn.MultiheadAttention``, a module holding an attention output
    projection such as a whole transformer layer, a fused query/key/value projection, a convolution
    without ``unit_dim``), and warns at the first pass where its slices are parts of heads (a grouped-query
    ``v_proj`` cut by the query-head count). A module whose output comes from a normalisation inside it
    is refused by the estimators, which inspect a pass, not here. A module that runs several times per pass (a tied
    block, an RNN cell looped in ``forward``, a shared activation) has every call's output replaced; a
    :class:`~lightning_causal.causal.engine.unit_interventions.Patch` there is refused at the end of the pass
    (``ValueError``, :func:`~lightning_causal.causal.engine.unit_interventions.repeated_patch_error`), as
    ``unit_effects`` refuses it: its one source row per sample would set every call to the paired run's last call.
    Tensors the block's passes write into a dict the model holds (a hypernetwork's weights cached per task id,
    ``self.cache[t] = gen(t)``) are warned of on exit (:class:`CachedInterventionWarning`, naming them): computed under
    the intervention, they would be read by every later pass (they are not taken out: a dict of activations that the
    forward records for you to read after the block is written so too). A site whose output the model takes from such
    a cache filled before the block does not run, and is warned of.

    Args:
        model: the model whose modules are intervened on.
        interventions: module name (as ``model.named_modules()`` gives it, or ``"<module>:input"`` for a
            module's first input) -> the
            :class:`~lightning_causal.causal.engine.unit_interventions.Intervention` applied to its
            output.

    Examples:
        >>> import torch
        >>> from lightning_causal.causal.engine.unit_interventions import Zero
        >>> m = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
        >>> with intervene(m, {"0": Zero()}):
        ...     m(torch.ones(1, 2))
        tensor([[0., 0.]], grad_fn=<ReluBackward0>)
        >>> len(m[0]._forward_hooks)
        0
    """
    if not isinstance(interventions, Mapping):
        raise TypeError(f"Expected argument `interventions` to be a mapping name -> Intervention but got {type(interventions)}")
    handles, caches = [], None
    with input_sites(model, list(interventions)):  # "<module>:input" sites exist for the block
        modules = _check_sites(model, interventions, Intervention)
        check_eager_possible(model)
        try:
            for name, module in modules.items():
                intervention = interventions[name]
                check_heads(model, name, module, getattr(intervention, "unit_dim", None), getattr(intervention, "num_heads", None))
                handles.append(module.register_forward_hook(_replacing_hook(model, name, intervention)))
            handles += _warn_unreached(model, modules, "the intervention")
            patched = {name: m for name, m in modules.items() if isinstance(interventions[name], Patch)}
            if patched:  # a module run several times a pass: refused, as unit_effects refuses it
                handles += _refuse_repeated_patch(model, patched)
            caches = dict_attributes(model)  # a cache the block's passes fill with intervened values: warned of
            with force_eager():
                yield model
        finally:
            for h in handles:
                h.remove()
        _warn_cached(model, caches, list(modules))


@contextlib.contextmanager
def capture(model: nn.Module, names: Sequence[str], detach: bool = True, *,
            keep: Callable[[str, Tensor], Tensor] | None = None, warn_repeats: bool = True,
            warn_unreached: bool = True) -> Iterator[dict[str, Tensor]]:
    """Record the outputs of the named modules during the ``with`` block, as each module returned
    them: copies, which later in-place operations of the model (``ReLU(inplace=True)``) do not change.

    A module that runs several times in one forward pass (a shared encoder, a cell unrolled over
    time) keeps its last call's output, with a ``UserWarning`` (unless ``warn_repeats=False``: a ``keep`` that
    records every call): an intervention built from it (``MeanOf``) is then applied at every call with the last
    call's statistics. Where a later call returns fewer rows than the pass's first (a block repeated on the rows not
    yet halted), the warning says so: the kept rows are then not the samples.

    With :func:`intervene` on the same module, hooks run in the order they were registered: ``capture``
    inside ``intervene``'s block records the intervened output, ``capture`` around it (entered first)
    the module's own output, before the intervention replaced it; what the model computes afterwards
    is the intervened run either way.

    Args:
        model: the model whose modules are recorded.
        names: module names (as in :func:`intervene`; a single string is one name).
        detach: record detached copies (the default); ``False`` keeps the copies in the autograd graph.
        keep: what to record of a module's output instead of a copy: ``keep(name, output)`` (the output
            detached, or not with ``detach=False``) must return a tensor of its own, made before the model
            goes on (the layer map records the output's difference from the clean rows without copying the
            output first: :func:`~lightning_causal.causal.structure.layer_trace.rows_minus`).
        warn_repeats: warn where a module runs more than once per forward pass (the default); ``False`` for a
            ``keep`` that records every call (FairnessAudit's recording of its carrier layers), for which "keeps its
            last call's output" is not true.
        warn_unreached: warn where a named module did not run in a forward pass (the default; its ``store`` entry is
            missing); ``False`` for a caller that refuses such a module itself, in its own words (``suspect_units``,
            the causal-path penalty of ``BackdoorSuppressionTerm``): its user gets the error alone, not a warning
            about ``capture``, which they did not call, before it.

    Examples:
        >>> import torch
        >>> from lightning_causal.causal.engine.unit_interventions import SetTo
        >>> m = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
        >>> with capture(m, ["0"]) as acts:
        ...     _ = m(torch.ones(4, 2))
        >>> acts["0"].shape
        torch.Size([4, 3])
        >>> with intervene(m, {"0": SetTo(5.0, units=[0])}), capture(m, ["0"]) as acts:
        ...     _ = m(torch.ones(4, 2))
        >>> acts["0"][0, 0].item()
        5.0
    """
    if isinstance(names, str):
        names = [names]
    store: dict[str, Tensor] = {}
    handles = []
    calls: dict[str, int] = {}  # per forward pass of the model
    first_rows: dict[str, int | None] = {}  # the rows of each module's first call in the pass
    warned: set[str] = set()
    warned_rows: set[str] = set()

    def make_hook(name: str):
        def hook(_m: nn.Module, _i: object, out: object) -> None:
            value = module_output(out, name)  # copied: a later in-place op (ReLU(inplace=True)) must not reach it
            if keep is not None:
                store[name] = keep(name, value.detach() if detach else value)
            else:
                store[name] = value.detach().clone() if detach else value.clone()
            calls[name] = calls.get(name, 0) + 1
            rows = value.shape[0] if value.dim() > 0 else None
            first = first_rows.setdefault(name, rows)
            fewer = fewer_rows(rows, first) and name not in warned_rows
            if warn_repeats and (fewer or calls[name] == 2 and name not in warned):
                warned.add(name)
                note = ""
                if fewer:
                    warned_rows.add(name)
                    note = f", and its call {calls[name]} returned {fewer_rows_cause(rows, first)}; capture {FEWER_ROWS_FIX}"  # type: ignore[arg-type]
                warnings.warn(f"Module {name!r} runs more than once per forward pass; capture keeps its last call's "
                              f"output{note}", RepeatedCallsWarning, stacklevel=outside_package())

        return hook

    with input_sites(model, names):  # "<module>:input" sites exist for the block
        modules = resolve_modules(model, names)
        check_eager_possible(model)
        try:
            handles.append(model.register_forward_pre_hook(lambda *_: calls.clear() or first_rows.clear()))  # None: args kept
            for name, module in modules.items():
                handles.append(module.register_forward_hook(make_hook(name)))
            if warn_unreached:
                handles += _warn_unreached(model, modules, "capture")
            with force_eager():
                yield store
        finally:
            for h in handles:
                h.remove()
