"""Answer the linear layers that read the intervened layer's output by updating their probe output.

A unit intervention changes a few inputs of every ``nn.Linear`` that reads the layer's output
unchanged (BERT's ``output.dense`` after ``intermediate``; Llama's ``down_proj`` after its MLP
neurons). For such a linear layer ``y = h W^T + b``, the
intervened row's output is its probe output plus the change of the changed inputs ``S`` only::

    y' = h' W^T + b = y + (h' - h) W^T = y + (h' - h)_S (W_S)^T    (W_S: the columns S of W)

so a suffix row costs ``|S| D_out`` multiply-adds per position there instead of ``I D_out``: one
neuron of 512 intervened is 1/512 of the layer's matrix product. A convolution (``nn.Conv1d``, ``nn.Conv2d``,
``nn.Conv3d``) reading the output is linear in it too: a row that changes channels ``S`` is answered as
``y + conv((h' - h)_S, W[:, S])`` (:mod:`~.conv_update`: stride, dilation, every padding mode, the group holding ``S``).
``S`` is what the edit says it
changes (``edit.changed_units``: the hidden-unit estimators' rows, :func:`~..effects.unit_rows.unit_rows`, and the
causal graph's, :class:`~..structure.graph_context.UnitEdit`, replace one unit per row); each layer answers the units it
can (a linear layer those of the last dimension, a convolution those of the channels inside one group, or positions
along a spatial dimension under zero padding, a sequence's steps, whose reach alone is computed): an edit that
does not say, or units wider than ``1 / MAX_SHARE`` of the inputs (a head of 4; of a group's input channels: a
depthwise convolution; positions reaching over an eighth of the output), run the layer as usual. Rounding aside this is the
layer's own product (the tests compare with the full forward passes in float64).

:class:`LinearReaders` records, during the prefix cache's probe run (the hook split's, or the ``torch.fx`` split's
recorder: unit importance and the causal graph's sweeps of a model that traces take the update too), every ``nn.Linear`` (exactly
that type: subclasses such as LoRA or quantised layers run as usual; also Hugging Face's
``Conv1D``, GPT-2's linear layer with its weight stored ``[in, out]``), and every ``nn.Conv1d``/``Conv2d``/``Conv3d``
(exactly those, on a batched input), whose input *is* the layer's
output tensor (not a copy, not modified in place since: ``Tensor._version``) together with a copy
of its forward's output on the probe (taken before its forward hooks run: a hook, or the model's code
changing it in place later, acts on the update's answer in a suffix run as it acts on the layer's
output; the rows of probe samples whose input or output there holds an ``inf`` or ``NaN``, an ``exp`` that overflowed,
take the layer's own product: ``y + (h' - h)_S W_S`` would be ``inf - inf``, a ``NaN``, where the product of ``h'`` is
finite); :meth:`LinearReaders.applied` patches their ``forward`` during a suffix run
so that a call whose input is the run's intervened tensor is answered by the update. Anything
else (another input, autograd or autocast on, extra arguments) calls the layer.

Examples:
    >>> import torch
    >>> from torch import nn
    >>> from lightning_causal.causal.engine.prefix_cache import cache_prefix
    >>> class Mlp(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.up, self.act, self.down = nn.Linear(4, 64), nn.GELU(), nn.Linear(64, 4)
    ...     def forward(self, x):
    ...         return self.down(self.act(self.up(x))).sum(1)
    >>> model, x = Mlp().eval(), torch.randn(3, 5, 4)
    >>> def zero_7(h):  # neuron 7 zeroed in every row, and the edit says so
    ...     return h.index_fill(-1, torch.tensor([7]), 0.0)
    >>> zero_7.changed_units = (torch.full((3,), 7), -1, 1)  # (unit of each row, unit_dim, unit_size)
    >>> with torch.no_grad():
    ...     cache = cache_prefix(model, x, "act", path="hooks")
    ...     out = cache(zero_7, torch.arange(3))
    ...     expected = model.down(zero_7(model.act(model.up(x)))).sum(1)
    >>> cache.linear.describe(), torch.allclose(out, expected, atol=1e-6)
    (["'down'"], True)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from lightning_causal._compat import is_autocast_enabled
from lightning_causal.causal.engine.conv_update import (
    add_conv_change,
    add_position_change,
    conv_share,
    conv_work,
    is_conv,
    takes_batched,
)
from lightning_causal.causal.engine.hook_split import patched_forwards
from lightning_causal.causal.engine.live_values import rows_of
from lightning_causal.causal.engine.unit_sites import first_tensor

__all__ = ["MAX_SHARE", "LinearReaders"]

#: The update runs when a row changes at most ``in_features / MAX_SHARE`` inputs of the layer, or of a convolution
#: ``in_channels / groups / MAX_SHARE`` input channels (the gathers and the batched product cost more than the plain
#: product beyond that; for convolutions ``benchmarks/bench_conv_update.py``).
MAX_SHARE = 8


def _conv1d_type() -> type | None:
    try:
        from transformers.pytorch_utils import Conv1D
    except Exception:  # noqa: BLE001 -- transformers not installed (or broken): no such layers to answer
        return None
    return Conv1D


def _is_linear(module: nn.Module) -> bool:
    """``nn.Linear`` or Hugging Face's ``Conv1D``, exactly (a subclass may change the product)."""
    return type(module) is nn.Linear or (type(module).__name__ == "Conv1D" and type(module) is _conv1d_type())


def _input_major(module: nn.Module) -> Tensor:
    """The weight as ``[in_features, out_features]`` (``Conv1D`` stores it so; ``nn.Linear`` transposed)."""
    return module.weight.t() if type(module) is nn.Linear else module.weight


def _autocast_on(device: torch.device) -> bool:
    """Whether autocast is on for ``device`` (the layer's product would run in another dtype)."""
    return is_autocast_enabled(device.type)


def _unfinite_rows(t: Tensor) -> Tensor:
    """``[N]`` whether each row (dimension 0) of ``t`` holds an ``inf`` or ``NaN``."""
    return ~torch.isfinite(t.detach()).reshape(t.shape[0], -1).all(1)


def _version(t: Tensor) -> int | None:
    """The tensor's in-place version counter (``None`` for an inference tensor, which has none)."""
    return None if t.is_inference() else t._version


def _unchanged(t: Tensor, version: int | None) -> bool:
    """Whether ``t`` was not changed in place since its version was read (unknown: no)."""
    return version is not None and _version(t) == version


class LinearReaders:
    """The ``nn.Linear`` modules and convolutions that read a layer's output as it is (see the module docstring).

    Args:
        layer: the intervened module (its first call's output, element 0 of a tuple, is ``h``).
        entry: in suffix runs that do not run ``layer``, the module whose first positional argument is the
            run's ``h`` (the ``"fx"`` path's traced suffix); ``None``: ``layer``'s first output, as in the probe run.
    """

    def __init__(self, layer: nn.Module, entry: nn.Module | None = None) -> None:
        self.layer = layer
        #: where a suffix run's intervened tensor shows: ``None``, the layer's own first output (the ``"hooks"`` path
        #: runs the layer); else the first positional argument of this module (the ``"fx"`` path's traced suffix, which
        #: starts after the layer and is given the rows' layer output)
        self.entry = entry
        self.names: dict[int, str] = {}
        self.outputs: dict[nn.Module, Tensor] = {}  # module -> its output on the probe
        self.value: Tensor | None = None  # h on the probe (the prefix cache's value)
        #: the ``(unit_dim, unit_size)`` of the units the prefix cache has tried the update on, on its trial rows
        self.checked: set[tuple[int, int]] = set()
        self._weights: dict[nn.Module, tuple[tuple[int, int, torch.dtype], Tensor]] = {}  # module -> input-major weight
        #: module -> ``[N]`` the probe samples whose input or output of the module is not finite (absent: none)
        self.unfinite: dict[nn.Module, Tensor] = {}

    def __bool__(self) -> bool:
        return bool(self.outputs)

    def describe(self, unit_dim: int | None = None, unit_size: int = 1) -> list[str]:
        """The names of the layers answered by the update (``unit_dim`` given: for rows that change one unit of
        ``unit_size`` positions of that dimension, :meth:`answers`).

        Args:
            unit_dim: the dimension of the changed units; ``None``: every recorded layer.
            unit_size: positions per unit.
        """
        modules = self.outputs if unit_dim is None else self._answering(unit_dim, unit_size)
        return [repr(self.names.get(id(m), type(m).__name__)) for m in modules]

    @contextlib.contextmanager
    def recording(self, model: nn.Module, *, at_entry: bool = False) -> Iterator[None]:
        """Open around the probe run: records each ``nn.Linear`` (or convolution, on a batched input) whose first
        positional argument is the layer's first output, unchanged (hooks removed on exit).

        Args:
            model: the model of the probe run.
            at_entry: the run is one of :attr:`entry`, whose first positional argument is ``h`` (a suffix that does
                not run the layer); ``False``: ``h`` is the layer's first output.
        """
        seen: dict[str, Any] = {}
        pending: dict[int, nn.Module] = {}

        def layer_hook(_m: nn.Module, args: Any, out: Any = None) -> None:
            h = first_tensor(args if at_entry else out)
            if "h" not in seen and h is not None:
                seen["h"], seen["version"] = h, _version(h)

        def pre(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            h = seen.get("h")
            if (h is not None and len(args) == 1 and not kwargs and args[0] is h and _unchanged(h, seen["version"])
                    and module not in self.outputs and not _autocast_on(h.device)
                    and (not is_conv(module) or takes_batched(module, h))):
                pending[id(module)] = module

        def post(module: nn.Module, _args: Any, out: Any) -> None:
            if pending.pop(id(module), None) is not None and isinstance(out, Tensor):
                # a copy: the model may change the output in place later (``y.clamp_(max=c)``, ``y += x``),
                # and the update adds to the layer's own product, not to what the model made of it
                self.outputs[module] = out.detach().clone()
                if "unfinite" not in seen:
                    seen["unfinite"] = _unfinite_rows(seen["h"])
                rows = seen["unfinite"] | _unfinite_rows(out)
                if bool(rows.any()):
                    self.unfinite[module] = rows

        linears = {name: m for name, m in model.named_modules() if _is_linear(m) or is_conv(m)}
        self.names = {id(m): name for name, m in linears.items()}
        handles = [self.entry.register_forward_pre_hook(layer_hook) if at_entry and self.entry is not None
                   else self.layer.register_forward_hook(layer_hook)]
        for module in linears.values():
            handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
            # first among the module's forward hooks: the forward's own output, before a user's hook changes it
            # (the update answers the forward; the hooks run on its answer in a suffix run as usual)
            handles.append(module.register_forward_hook(post, prepend=True))
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def answers(self, unit_dim: int, unit_size: int) -> bool:
        """Whether rows that change one unit (``unit_size`` wide) of dimension ``unit_dim`` are
        answered by the update in some recorded layer: a linear layer's units of the last dimension, a convolution's
        of the channels (dimension 1) inside one group, at most ``1 / MAX_SHARE`` of the inputs (of a group's), or of
        positions along a spatial dimension (:func:`~.conv_update.conv_share`: zero padding, a reach of at most
        ``1 / MAX_SHARE`` of the output there, ``POSITION_MIN_WORK`` multiply-adds spared a row).

        Args:
            unit_dim: the dimension of the changed units.
            unit_size: positions per unit (1, or a head's dimension).
        """
        return bool(self._answering(unit_dim, unit_size))

    def conv_work_spared(self, unit_dim: int, unit_size: int) -> float | None:
        """The multiply-adds per row that the update spares in the convolutions answering rows that change one unit
        (``unit_size`` wide) of dimension ``unit_dim``: each one's product (``in_channels / groups`` x kernel x
        output elements) less the share the update computes (:func:`~.conv_update.conv_share`); ``None`` where a
        linear layer answers such rows (its update was always taken: session 32's graphs over MLPs and transformers).

        Args:
            unit_dim: the dimension of the changed units.
            unit_size: positions per unit.
        """
        shares = self._answering(unit_dim, unit_size)
        if any(not is_conv(m) for m in shares):
            return None
        return sum(conv_work(m, self.outputs[m].shape) * (1.0 - share) for m, share in shares.items())

    def _answering(self, unit_dim: int, unit_size: int) -> dict[nn.Module, float]:
        """The recorded layers that answer rows changing one unit (``unit_size`` wide) of dimension ``unit_dim``, each
        with the share of its product the update computes."""
        if self.value is None:
            return {}
        ndim = self.value.dim()
        last = unit_dim % ndim == ndim - 1
        shares = {m: conv_share(m, unit_dim, unit_size, ndim, out.shape) if is_conv(m)
                  else (unit_size / self.value.shape[-1] if last else None) for m, out in self.outputs.items()}
        return {m: share for m, share in shares.items() if share is not None and share * MAX_SHARE <= 1}

    def unchecked(self, edit: object) -> tuple[int, int] | None:
        """The ``(unit_dim, unit_size)`` of ``edit``'s units where a run of it would be answered by the update and the
        update was not tried on such units yet (the prefix cache's trial rows), else ``None``.

        Args:
            edit: the layer output of the coming run, as in :meth:`used_by`.
        """
        if not self.used_by(edit):
            return None
        _, unit_dim, unit_size = edit.changed_units  # type: ignore[attr-defined]
        key = (unit_dim % self.value.dim(), unit_size)  # type: ignore[union-attr]
        return None if key in self.checked else key

    def used_by(self, edit: object) -> bool:
        """Whether a suffix run of ``edit`` would be answered by the update (its hint qualifies).

        Args:
            edit: the layer output of the run: an object with ``changed_units`` ``(units [R], unit_dim,
                unit_size)``, or anything else (not answered).
        """
        hint = getattr(edit, "changed_units", None)
        return hint is not None and self.answers(hint[1], hint[2])

    def clear(self) -> None:
        """Answer no layer by the update from now on (the cache fell back to full passes)."""
        self.outputs, self._weights, self.unfinite = {}, {}, {}

    @contextlib.contextmanager
    def applied(self, rows: Tensor, edit: object = None) -> Iterator[None]:
        """During a suffix run of the probe samples ``rows`` whose layer output is ``edit``: a recorded
        layer called on the run's first output of the intervened layer is answered by the update
        when ``edit`` says which units it changes (``edit.changed_units``: ``(units [R], unit_dim, unit_size)``, set by
        the hidden-unit estimators and the causal graph) and the layer answers such units (:meth:`answers`: a linear
        layer those of the last dimension, a convolution its channels or positions; hooks restored on exit).

        Args:
            rows: ``[R]`` the probe sample of each row of the run.
            edit: the intervened layer output of the run, as in :meth:`used_by`; ``None``: no update.
        """
        if not self.used_by(edit) or edit.changed_units[0].shape != rows.shape:  # type: ignore[attr-defined]
            yield
            return
        units, unit_dim, unit_size = edit.changed_units  # type: ignore[attr-defined]
        columns = units.view(-1, 1) * unit_size + torch.arange(unit_size, device=units.device)  # [R, k]
        current: dict[str, Any] = {}

        def layer_hook(_m: nn.Module, args: Any, out: Any = None) -> None:
            h = first_tensor(out if self.entry is None else args)
            if "h" not in current and h is not None:
                current["h"], current["version"] = h, _version(h)

        def wrap(module: nn.Module) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
            def make(original: Callable[..., Any]) -> Callable[..., Any]:
                def forward(*args: Any, **kwargs: Any) -> Any:
                    h = current.get("h")
                    if (h is None or len(args) != 1 or kwargs or args[0] is not h or not _unchanged(h, current["version"])
                            or h.shape[1:] != self.value.shape[1:] or h.shape[0] != rows.shape[0] or h.dtype != self.value.dtype
                            or torch.is_grad_enabled() or _autocast_on(h.device)):
                        return original(*args, **kwargs)
                    out = self._update(module, h, rows, columns, unit_dim=unit_dim % h.dim())
                    unfinite = self.unfinite.get(module)
                    if unfinite is not None:  # those rows' own product (the update's inf - inf there is NaN)
                        picked = unfinite[rows.to(unfinite.device)].nonzero().flatten()
                        if picked.numel():
                            out[picked] = original(h[picked])
                    return out

                return forward

            return make

        handle = (self.layer.register_forward_hook(layer_hook) if self.entry is None
                  else self.entry.register_forward_pre_hook(layer_hook))
        try:
            with patched_forwards({m: wrap(m) for m in self._answering(unit_dim, unit_size)}):
                yield
        finally:
            handle.remove()

    def _update(self, module: nn.Module, h: Tensor, rows: Tensor, columns: Tensor, *, unit_dim: int = 1) -> Tensor:
        """``module``'s probe output of ``rows`` plus the change of each row's changed ``columns`` ``[R, k]`` (of the
        last dimension for a linear layer; of a convolution's ``unit_dim``: its channels, or positions along a spatial
        dimension, whose reach only is computed: :mod:`~.conv_update`)."""
        device = self.value.device
        rows, columns = rows.to(device), columns.to(device)
        if is_conv(module) and unit_dim >= 2:
            out = rows_of(self.outputs[module], rows).contiguous()  # a fresh copy: the change is added into it
            add_position_change(module, out, h, self.value, rows, columns, unit_dim)
            return out
        if is_conv(module):
            delta = h[torch.arange(h.shape[0], device=device)[:, None], columns] - self.value[rows[:, None], columns]
            out = rows_of(self.outputs[module], rows).contiguous()  # a fresh copy: the change is added into it
            add_conv_change(module, out, delta, columns, self._weight(module))
            return out
        r, width = h.shape[0], h.shape[-1]
        positions = h.numel() // (r * width)
        new = h.reshape(r, positions, width).gather(2, columns[:, None, :].expand(-1, positions, -1))  # [R, P, k]
        old = self.value.reshape(self.value.shape[0], positions, width)[
            rows[:, None, None], torch.arange(positions, device=device)[None, :, None], columns[:, None, :]]
        weight = self._weight(module)
        w = weight.index_select(0, columns.flatten()).view(r, columns.shape[1], weight.shape[1])  # [R, k, D_out]
        out = rows_of(self.outputs[module], rows)  # a fresh copy: the change is added into it
        out.view(r, positions, -1).baddbmm_(new - old, w.to(new.dtype))
        return out

    def _weight(self, module: nn.Module) -> Tensor:
        """The module's weight as the update reads it, contiguous: a linear layer's as ``[in_features,
        out_features]`` (its rows are the columns the update gathers), a convolution's as it is. ``nn.Linear`` stores
        ``[out, in]``, whose columns a gather reads one element per row of the weight (5-6x the time of contiguous rows
        on a 4,096 x 4,096 layer, one thread): a copy made once for the reader's life (the weight's ``_version``
        checked: a change in place makes a new one), as of a convolution's weight that is not contiguous
        (``channels_last``)."""
        weight = module.weight if is_conv(module) else _input_major(module)
        if weight.is_contiguous():  # Hugging Face's Conv1D stores [in, out]
            return weight
        key = (weight.data_ptr(), weight._version, weight.dtype)
        kept = self._weights.get(module)
        if kept is None or kept[0] != key:
            kept = self._weights[module] = (key, weight.contiguous())
        return kept[1]
