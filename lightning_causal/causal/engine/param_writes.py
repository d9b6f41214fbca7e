"""Parameters an audit's passes wrote and no block put back: a forward that writes its own parameters in place
(``self.base.weight.data += B @ A`` in eval mode, ``self.loc.data.copy_(...)`` on the first pass) is kept where the
package can tell it will (:mod:`~lightning_causal.causal.engine.init_writes`: a flag named for initialisation or for a
merged update, a ``train`` of the class's own), and the values written anywhere else are found here, by a fingerprint of
each parameter below a module of the user's own class taken when the outermost :func:`param_writes_refused` block opens
and compared when it closes, after the blocks inside it have put back what they keep: a LoRA layer whose merge state is
an int counter, a string or a buffer, or a module merging without any flag, no longer leaves its weights changed in
silence (``B @ A`` counted twice after the audit, the next training steps starting from there)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.init_writes import _TRAIN_WRITES_NOTHING as _LIBRARY

__all__ = ["fingerprints", "param_writes_refused", "watched_params", "written_since"]

#: an integer dtype of each element size: a parameter's bits read as integers, so that any change of a value shows
_BITS = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def watched_params(model: nn.Module) -> dict[str, Tensor]:
    """The parameters (by qualified name, each once) below a module of ``model`` whose class is not torch's,
    transformers' or Lightning's own: those a forward of the user's may write. A model of library modules only has
    none (it costs nothing). One walk of the modules, each parameter read where its module holds it."""
    found: dict[int, tuple[str, Tensor]] = {}
    below: set[str] = set()  # the prefixes of the modules of the user's class and of those below them
    for prefix, m in model.named_modules():
        if type(m).__module__.startswith(_LIBRARY) and not (prefix and prefix.rpartition(".")[0] in below):
            continue
        below.add(prefix)
        for name, p in m._parameters.items():
            if isinstance(p, Tensor) and not isinstance(p, nn.parameter.UninitializedParameter) \
                    and p.device.type != "meta":
                found.setdefault(id(p), (f"{prefix}.{name}" if prefix else name, p))
    return dict(found.values())


def _fingerprint(p: Tensor) -> tuple:
    """A cheap summary of ``p``'s values exact to a bit: its shape, dtype and the sum of its bits read as integers,
    modulo 2**32 (any one value changed changes it; no copy of the parameter is made)."""
    t = p.detach()
    size = t.element_size()
    if size not in _BITS or t.layout != torch.strided:  # complex128, a sparse parameter: not watched
        return tuple(t.shape), t.dtype, None
    if size < 4 and t.is_contiguous() and t.numel() * size % 4 == 0:
        t, size = t.view(-1).view(torch.int32), 4  # a half-precision parameter's bits two by two
    bits = _BITS[size]
    # summed in their own width, wrapping: as fast as a float sum (an int64 accumulator of int32 is ~15x slower)
    return tuple(p.shape), p.dtype, t.view(bits).sum(dtype=bits)


@contextlib.contextmanager
def param_writes_refused(model: nn.Module) -> Iterator[None]:
    """Refuse (``ValueError`` naming the parameters, the modules holding them and the ways out), when the block closes
    without an exception, the values of ``model``'s parameters below a module of the user's own class
    (:func:`watched_params`) that a pass inside wrote and no block inside put back. The outermost block open watches;
    a block inside it (an estimator's ``audit_mode`` inside the callback's ``no_trace``) reads only the parameters no
    block outside watches (another model's: nothing for the same model).

    Args:
        model: the model.

    Examples:
        >>> class Merging(nn.Module):  # merges its update in an eval-mode forward, its state in a counter
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.base, self.delta, self.merges = nn.Linear(2, 2), nn.Parameter(torch.ones(2, 2)), 0
        ...     def forward(self, x):
        ...         if not self.training and self.merges == 0:
        ...             self.base.weight.data += self.delta.detach()
        ...             self.merges += 1
        ...         return self.base(x)
        >>> model = Merging().eval()
        >>> with param_writes_refused(model):  # doctest: +ELLIPSIS
        ...     _ = model(torch.ones(1, 2))
        Traceback (most recent call last):
            ...
        ValueError: The model's forward wrote `base.weight` (below `Merging`) during the audit's passes and ...
    """
    watching = _WATCHING.get()
    if id(model) in _WATCHED_MODELS.get():  # a block inside one watching this very model: nothing more to read
        yield
        return
    params = {name: p for name, p in watched_params(model).items() if id(p) not in watching}
    if not params:  # none of the user's, or all watched by a block open outside (the callback's no_trace)
        yield
        return
    before = fingerprints(params)
    token = _WATCHING.set(watching | {id(p) for p in params.values()})
    # a model whose lazy parameters a pass may create is walked again by the blocks inside (its new parameters watched)
    lazy = any(isinstance(p, nn.parameter.UninitializedParameter) for p in model.parameters())
    models = _WATCHED_MODELS.set(_WATCHED_MODELS.get() | (set() if lazy else {id(model)}))
    try:
        yield
    finally:
        _WATCHED_MODELS.reset(models)
        _WATCHING.reset(token)
    written = written_since(params, before)
    if written:
        raise ValueError(_message(model, written))


def fingerprints(params: Mapping[str, Tensor]) -> dict[str, tuple]:
    """Each tensor of ``params`` by name, as its fingerprint (shape, dtype and the sum of its bits: no copy made), for
    :func:`written_since` to tell which a pass wrote.

    Examples:
        >>> params = dict(nn.Linear(2, 2).named_parameters())
        >>> before = fingerprints(params)
        >>> with torch.no_grad():
        ...     _ = params["bias"].add_(1.0)
        >>> written_since(params, before)
        ['bias']
    """
    with torch.no_grad():
        return {name: _fingerprint(p) for name, p in params.items()}


def written_since(params: Mapping[str, Tensor], before: Mapping[str, tuple]) -> list[str]:
    """The names of ``params`` whose values differ from their :func:`fingerprints` ``before`` (exact to a bit), in
    ``params``' order; a name ``before`` lacks counts as written."""
    with torch.no_grad():
        now = {name: _fingerprint(p) for name, p in params.items()}
    return _written({name: (f, before[name]) for name, f in now.items() if name in before}) \
        + [name for name in params if name not in before]


def _written(pairs: dict[str, tuple[tuple, tuple]]) -> list[str]:
    """The names whose fingerprints (after, before) differ: the sums compared on their device, read back once per
    device (not once per parameter)."""
    written = {name for name, (a, b) in pairs.items() if a[:2] != b[:2]}
    by_device: dict[torch.device, list[tuple[str, Tensor]]] = {}
    for name, (a, b) in pairs.items():
        if name not in written and a[2] is not None and b[2] is not None:
            by_device.setdefault(a[2].device, []).append((name, a[2] != b[2]))
    for rows in by_device.values():
        changed = torch.stack([d for _, d in rows]).tolist()
        written.update(name for (name, _), c in zip(rows, changed) if c)
    return [name for name in pairs if name in written]


def _message(model: nn.Module, written: list[str]) -> str:
    """The refusal naming the ``written`` parameters, the user's modules holding them and the ways out."""
    shown = ", ".join(f"`{n}` (below `{_holder(model, n)}`)" for n in written[:4])
    more = f" and {len(written) - 4} more" if len(written) > 4 else ""
    return (f"The model's forward wrote {shown}{more} during the audit's passes and the audit could not put "
            "them back: they were not copied, so the model now holds the values its passes wrote (training would go "
            "on from there). A forward writing its parameters in eval mode, as a LoRA layer merging its update in "
            "forward by `self.training` does, is kept where its module holds its merge state in a bool or int "
            "attribute whose name holds `merged` (`self.merged = False`; or merges in a `train(mode)` of its own); a "
            "data-dependent initialisation on the first pass, where its flag's name holds `init` (`self.initialized`); "
            "else keep the forward from writing its parameters outside training.")


def _holder(model: nn.Module, name: str) -> str:
    """The class of the innermost module of the user's own holding the parameter ``name``."""
    parts, holder = name.split("."), type(model).__name__
    m: nn.Module = model
    for part in parts[:-1]:
        m = getattr(m, part)
        if not type(m).__module__.startswith(_LIBRARY):
            holder = type(m).__name__
    return holder


#: the ids of the parameters the :func:`param_writes_refused` blocks open watch: a block inside reads only those they
#: do not (another model's, audited inside the callback's block for the trained one)
_WATCHING: ContextVar[frozenset[int]] = ContextVar("lightning_causal_param_writes_refused", default=frozenset())
#: the models (by ``id``) whose outermost block is open: a block inside for the same model reads nothing
_WATCHED_MODELS: ContextVar[frozenset[int]] = ContextVar("lightning_causal_param_writes_models", default=frozenset())
