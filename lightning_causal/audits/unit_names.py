"""What the unit-importance figures call a layer's units where the model says what they are.

``unit_dim`` off dimension 1 names the features of ``[N, T, D]`` hidden states, "neurons"
(:func:`~lightning_causal.causal.engine.units.unit_kind`). The model says otherwise in two cases, told apart on one
pass of one probe sample with a forward hook on every module:

- the layer's output holds channels in dimension 1 (``[N, C, ...]``): it is a convolution, a BatchNorm/InstanceNorm,
  a GroupNorm or a pooling layer (of an output of three or more dimensions), or a module that keeps its input's layout
  (an activation, a dropout, ``nn.Identity``) given the output of one, through any number of such modules (the
  ``nn.ReLU`` after an ``nn.Conv1d``): dimension 2 on are its positions ("position");
- the layer's output is complex: a spectrum (the modes of ``torch.fft.rfft`` a Fourier neural operator mixes),
  "mode".

A layer returned by a functional call between modules (``F.relu(self.conv(x))`` into a module) is not traced back:
its units keep the name ``unit_dim`` gives them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from lightning_causal.audits.base import Probe
from lightning_causal.causal.engine.forward import Forward, OutputSpec
from lightning_causal.causal.engine.state import as_tuple, audit_mode
from lightning_causal.causal.engine.unit_sites import first_tensor
from lightning_causal.causal.engine.units import unit_kind

__all__ = ["channels_source", "probe_unit_kinds", "unit_kinds"]

#: modules whose output holds channels in dimension 1 (of three or more dimensions)
CHANNELS_FIRST: tuple[type[nn.Module], ...] = (
    nn.modules.conv._ConvNd, nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.modules.pooling._MaxPoolNd,
    nn.modules.pooling._AvgPoolNd, nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd,
    nn.modules.pooling._LPPoolNd)


def _keeps_layout(module: nn.Module) -> bool:
    """Whether ``module`` gives back its input's layout: an activation (not ``nn.MultiheadAttention``), a dropout,
    ``nn.Identity``."""
    if isinstance(module, (nn.modules.dropout._DropoutNd, nn.Identity)):
        return True
    return type(module).__module__ == nn.modules.activation.__name__ and not isinstance(module, nn.MultiheadAttention)


def channels_source(calls: Mapping[str, tuple[int, int, int]], modules: Mapping[str, nn.Module], layer: str) -> str | None:
    """The module whose channels-first output ``layer``'s output carries (``layer`` itself, or the module before a chain
    of modules that keep the layout), or ``None``.

    Args:
        calls: per module name, ``(id of its first input, id of its output, dimensions of its output)`` in one pass.
        modules: the model's modules by name.
        layer: the layer.

    Examples:
        >>> net = nn.Sequential(nn.Conv1d(2, 3, 1), nn.ReLU(), nn.Dropout(), nn.Linear(4, 5))
        >>> calls = {"0": (1, 2, 3), "1": (2, 3, 3), "2": (3, 4, 3), "3": (4, 5, 3)}
        >>> mods = dict(net.named_modules())
        >>> channels_source(calls, mods, "2"), channels_source(calls, mods, "3")
        ('0', None)
    """
    made: dict[int, str] = {}
    for name, (_, out, _) in calls.items():  # in call order: a module giving back its input (a dropout in eval, an
        made.setdefault(out, name)  # in-place ReLU) is not the maker of that tensor
    seen: set[str] = set()
    at: str | None = layer
    while at is not None and at in calls and at not in seen and calls[at][2] >= 3:
        if isinstance(modules[at], CHANNELS_FIRST):
            return at
        if not _keeps_layout(modules[at]):
            return None
        seen.add(at)
        at = made.get(calls[at][0])
    return None


def unit_kinds(model: nn.Module, inputs: tuple[Tensor, ...], layers: Sequence[str], kinds: Mapping[str, str | None],
               forward_options: Mapping[str, Any]) -> tuple[dict[str, str | None], dict[str, str]]:
    """What to call the units of each layer whose ``kinds`` entry is ``"neuron"`` (``unit_dim`` off dimension 1), from
    one pass of the first probe sample (:func:`audit_mode`: it leaves no trace), and the module whose channels a
    ``"position"`` layer carries; the other layers as ``kinds`` says. No pass where no layer is a ``"neuron"`` one.

    Args:
        model: the model.
        inputs: the probe's inputs (the first sample is run).
        layers: the layers.
        kinds: per layer, :func:`~lightning_causal.causal.engine.units.unit_kind` of its ``unit_dim`` and ``num_heads``.
        forward_options: the probe's ``output=`` and ``additional_forward_args=`` of the first sample, for
            :class:`~lightning_causal.causal.engine.forward.Forward`.

    Examples:
        >>> import torch
        >>> net = nn.Sequential(nn.Conv1d(2, 3, 1), nn.ReLU(), nn.Flatten(), nn.Linear(12, 2))
        >>> unit_kinds(net, (torch.randn(2, 2, 4),), ["1"], {"1": "neuron"}, {})
        ({'1': 'position'}, {'1': '0'})
    """
    found = dict(kinds)
    asked = [layer for layer in layers if kinds.get(layer) == "neuron"]
    if not asked:
        return found, {}
    modules = dict(model.named_modules())
    calls: dict[str, tuple[int, int, int]] = {}
    held: list[Any] = []  # the pass's tensors, alive until the walk: their ids stay theirs
    complex_out: dict[str, bool] = {}

    def hook(name: str) -> Any:
        def record(_m: nn.Module, args: tuple[Any, ...], out: Any) -> None:
            value = first_tensor(out)  # None for a module returning a dict or nothing, whose calls are not recorded
            if name in calls or value is None:
                return
            first = args[0] if args and isinstance(args[0], Tensor) else None
            held.extend((first, value))
            calls[name] = (id(first) if first is not None else -1, id(value), value.dim())
            complex_out[name] = value.is_complex()
        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in modules.items() if name]
    try:
        with audit_mode(model):
            Forward(model, num_samples=1, **forward_options)(*(x[:1] for x in inputs))
    except Exception:  # noqa: BLE001 - the units keep the name unit_dim gives them; the audit's own passes ran
        return found, {}
    finally:
        for handle in handles:
            handle.remove()
    sources: dict[str, str] = {}
    for layer in asked:
        source = channels_source(calls, modules, layer)
        if source is not None:
            found[layer], sources[layer] = "position", source
        elif complex_out.get(layer):
            found[layer] = "mode"
    held.clear()
    return found, sources


def probe_unit_kinds(model: nn.Module, probe: Probe, layers: Sequence[str], dims: Mapping[str, int | None],
                     heads: Mapping[str, int | None], output: OutputSpec,
                     additional_forward_args: Any) -> tuple[dict[str, str | None], dict[str, str]]:
    """:func:`unit_kinds` of an audit's layers (``UnitImportanceAudit``'s bars, ``CausalGraphAudit``'s graph figure):
    each layer's :func:`~lightning_causal.causal.engine.units.unit_kind` of its ``unit_dim`` and ``num_heads``, named
    from one pass of the probe's first sample where it is ``"neuron"``.

    Args:
        model: the model.
        probe: the audit's probe.
        layers: the layers.
        dims: per layer, its ``unit_dim``.
        heads: per layer, its ``num_heads``.
        output: the audit's ``output=``.
        additional_forward_args: the forward arguments of the probe's passes.
    """
    options = {"output": output, **Probe(probe.inputs, probe.labels, additional_forward_args).subset(slice(0, 1)).forward_options}
    return unit_kinds(model, as_tuple(probe.inputs), layers, {layer: unit_kind(dims[layer], heads[layer]) for layer in layers},
                      options)
