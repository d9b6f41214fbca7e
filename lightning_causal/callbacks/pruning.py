"""Causal pruning for Lightning's own :class:`~lightning.pytorch.callbacks.ModelPruning`.

Conv filters and neurons are ranked by their counterfactual importance on a probe set,
``E_x |f_t(x) - f_t(x | do(h_u := 0))|`` (Debbi 2021; TRACER's compression; the structured
pruning of Narendra et al.), and the least important whole units are masked. Unlike a weight
norm, the score is measured in logits for every layer alike, so one global ranking across layers
is meaningful.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, get_args

import torch
import torch.nn.utils.prune as pytorch_prune
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import Tensor, nn
from torch.nn.utils import parametrize

from lightning_causal.causal.effects.unit_effects import unit_effects
from lightning_causal.causal.engine.checks import check_float, check_int
from lightning_causal.causal.engine.forward import OutputSpec, check_output_spec, select_output
from lightning_causal.causal.engine.interventions import resolve_module
from lightning_causal.causal.engine.lazy_modules import unbuilt_refusal
from lightning_causal.causal.engine.state import audit_mode, resolve_target

__all__ = ["causal_unit_scores", "causal_pruning_fn"]

PruningScope = Literal["global", "layer"]
_SCOPES: tuple[PruningScope, ...] = get_args(PruningScope)  # the values `scope` takes


def causal_unit_scores(
    model: nn.Module,
    probe_inputs: Tensor | tuple[Tensor, ...],
    layers: Sequence[str],
    target: int | Tensor | None = None,
    *,
    max_batch_size: int | None = None,
    output: OutputSpec = None,
) -> dict[str, Tensor]:
    """Counterfactual importance ``E_x |f_t(x) - f_t(x | do(h_u := 0))|`` of every unit of ``layers``.

    Zeroing unit ``u``'s output is exactly what pruning its filter (weights and bias) does, so
    the score is the logit change the pruning would cause on the probe, one unit at a time.
    ``output`` selects the explained tensor of the model's return value (a head of a model of
    several outputs: ``output="cls"``; see :class:`~lightning_causal.causal.engine.forward.Forward`).

    Args:
        model: the network (an ``nn.Module``).
        probe_inputs: the probe: a tensor ``[N, ...]`` or a tuple of tensors.
        layers: the names of the pruned modules (as ``model.named_modules()`` gives them).
        target: class index, per-sample indices ``[N]``, or ``None`` (the predicted class).
        max_batch_size: rows per forward pass; ``None``: chosen from the memory budget.
        output: as above; ``None``: a tensor, ``.logits`` or ``["logits"]``.

    Examples:
        >>> from lightning_causal.models import MLP
        >>> scores = causal_unit_scores(MLP(4, (8,)), torch.randn(16, 4), ["net.0"])
        >>> scores["net.0"].shape
        torch.Size([8])
    """
    return {layer: unit_effects(model, probe_inputs, layer, None, target=target, max_batch_size=max_batch_size,
                                unit_dim=_pruned_dim(resolve_module(model, layer)), output=output).abs().mean(0)
            for layer in layers}


def _pruned_dim(module: nn.Module) -> int | None:
    """The output dimension whose units the rows of ``module.weight`` make: the last for a linear
    layer (``[N, D]`` or a sequence ``[N, T, D]``), the channels (1, the default) for a convolution."""
    return -1 if isinstance(module, nn.Linear) else None


def _unit_params(model: nn.Module, layers: Sequence[str]) -> list[tuple[nn.Module, str]]:
    params = []
    for layer in layers:
        try:
            module = resolve_module(model, layer)
        except (ValueError, TypeError) as err:
            raise MisconfigurationException(f"Expected argument `layers` to name modules of the model: {err}") from err
        weight = getattr(module, "weight", None)
        if type(module).__name__ == "Conv1D":  # Hugging Face's transposed linear layer (GPT-2): weight [in, out]
            raise MisconfigurationException(
                f"Expected argument `layers` to name layers whose weight rows are their output units, but {layer!r} is a "
                "Hugging Face Conv1D (weight [in, out]): pruning its rows would cut input features")
        if not isinstance(weight, Tensor) or weight.dim() < 2:
            raise MisconfigurationException(
                f"Expected argument `layers` to name convolutions or linear layers (a weight [units, ...]) "
                f"but {layer!r} is a {type(module).__name__}"
            )
        names = ["weight"] + (["bias"] if isinstance(getattr(module, "bias", None), Tensor) else [])
        parametrized = [name for name in names if parametrize.is_parametrized(module, name)]
        if parametrized:  # torch's pruning would fail at the first prune, inside ModelPruning, after an epoch
            raise MisconfigurationException(
                f"Expected argument `layers` to name layers whose weights torch.nn.utils.prune can mask, but {layer!r} has "
                f"a parametrized {' and '.join(parametrized)} (weight_norm, spectral_norm, register_parametrization): "
                "pruning replaces a parameter by `<name>_orig * <name>_mask`, which a parametrization's computed tensor "
                "does not allow. Leave the layer out, or remove its parametrization first "
                "(torch.nn.utils.parametrize.remove_parametrizations)")
        params += [(module, name) for name in names]
    return params


def _current_mask(module: nn.Module, name: str) -> Tensor:
    mask = getattr(module, name + "_mask", None)
    return mask if mask is not None else torch.ones_like(getattr(module, name))


def causal_pruning_fn(
    model: nn.Module,
    probe_inputs: Tensor | tuple[Tensor, ...],
    layers: Sequence[str],
    target: int | Tensor | None = None,
    *,
    scope: PruningScope = "global",
    max_batch_size: int | None = None,
    output: OutputSpec = None,
) -> type[_CausalUnitPruning]:
    """A pruning method for ``ModelPruning`` that masks the causally least important units.

    Returns a :class:`torch.nn.utils.prune.BasePruningMethod` *subclass* (what ``ModelPruning``
    accepts as ``pruning_fn``, with ``use_global_unstructured=True``), typed as such with its class method
    ``prune(amount)`` and its ``parameters_to_prune``. Each time it prunes, it
    scores the still-unpruned filters / neurons of ``layers`` with :func:`causal_unit_scores` on
    the probe (with the current masks applied) and masks the weights and bias of the lowest
    ``amount`` of them: a fraction of the remaining units (float) or a number of units (int),
    ranked over all layers (``scope="global"``; the scores share one unit, the logit) or within
    each layer (``scope="layer"``). The last unit of a layer is never pruned. Pass the class's
    ``parameters_to_prune`` to ``ModelPruning`` so that its flat mask lines up with the units.

    Args:
        model: the network holding ``layers`` (a ``LightningModule`` or the module it wraps).
        probe_inputs: inputs on which the units are scored (moved to the model's device).
        layers: names of convolutions / linear layers whose output units are pruned.
        target: class whose logit is explained; ``None`` = the predicted class.
        scope: ``"global"`` or ``"layer"``.
        max_batch_size: rows per forward pass of the interventions.
        output: which tensor of the model's return value is explained (``None``: a tensor, ``.logits``
            or ``["logits"]``; a key, an index or a callable): the head whose logit the units are
            scored on, for a model of several outputs (units only the other heads read score 0 and
            are pruned first).

    Raises:
        MisconfigurationException: unknown layers, layers without a ``[units, ...]`` weight or with a
            parametrized one (``weight_norm``, ``spectral_norm``: torch's pruning cannot mask it), an
            unknown ``scope``, a probe that is not a tensor or that the model rejects, an ``output``
            that selects no tensor of its return value, a ``target`` out of the model's classes, a model holding a
            lazy module not built yet (``nn.LazyLinear`` before its first call: run ``model(x)`` first).

    Examples:
        >>> from lightning.pytorch.callbacks import ModelPruning
        >>> from lightning_causal.models import DigitsCNN
        >>> net = DigitsCNN()
        >>> method = causal_pruning_fn(net, torch.rand(32, 1, 8, 8), ["conv1", "conv2"])
        >>> cb = ModelPruning(method, parameters_to_prune=method.parameters_to_prune, amount=0.25)
        >>> method.prune(0.25)  # or directly, outside a Trainer
        >>> sum(int((m.weight_mask.flatten(1).sum(1) == 0).sum()) for m in (net.conv1, net.conv2))  # of 48 filters
        12
    """
    if scope not in _SCOPES:
        raise MisconfigurationException(f"Expected argument `scope` to be one of {_SCOPES} but got {scope!r}")
    tensors = probe_inputs if isinstance(probe_inputs, tuple) else (probe_inputs,)
    if not tensors or not all(isinstance(t, Tensor) for t in tensors):
        raise MisconfigurationException(f"Expected argument `probe_inputs` to be a tensor or a tuple of tensors but got {type(probe_inputs)}")
    if isinstance(layers, str):
        layers = [layers]
    if not layers:
        raise MisconfigurationException("Expected argument `layers` to be a non-empty list of module names")
    output = check_output_spec(output, MisconfigurationException)
    lazy = unbuilt_refusal(model)
    if lazy is not None:  # the probe's check would build them (audit_mode refuses), torch's pruning cannot mask them
        raise MisconfigurationException(f"causal_pruning_fn: {lazy}")
    params = _unit_params(model, layers)
    _check_probe(model, tensors, target, output)
    config = {"model": model, "probe": probe_inputs, "layers": list(layers), "target": target, "scope": scope,
              "max_batch_size": max_batch_size, "output": output}
    return type("CausalUnitPruning", (_CausalUnitPruning,), {"parameters_to_prune": params, "config": config})


def _check_probe(model: nn.Module, tensors: tuple[Tensor, ...], target: int | Tensor | None, output: OutputSpec = None) -> None:
    """Run the model on one probe row now, so that a probe it cannot take (a return value ``output``
    selects no tensor of, or a ``target`` out of its classes) is refused here and not after the first
    training epoch, inside ``ModelPruning`` (modes and grads restored)."""
    device = next((p.device for p in model.parameters()), tensors[0].device)
    try:
        with audit_mode(model), torch.no_grad():
            out = model(*(t[:1].to(device) for t in tensors))
    except Exception as err:
        raise MisconfigurationException(
            f"Expected argument `probe_inputs` of shape {[list(t.shape) for t in tensors]} to be accepted by the model, "
            f"but its forward pass raised: {err}") from err
    try:
        out = select_output(out, output)
    except (TypeError, ValueError) as err:
        raise MisconfigurationException(f"causal_pruning_fn: {err}") from err
    if target is not None and out.dim() == 2:
        try:  # the class range and the number of entries, as the scores at each pruning check them
            resolve_target(out.expand(len(tensors[0]), -1), target)
        except (TypeError, ValueError) as err:
            raise MisconfigurationException(str(err)) from err


def _check_amount(amount: object) -> None:
    """``amount``: a number of units (int >= 0) or a fraction of them (float in [0, 1]), as torch's pruning methods."""
    if isinstance(amount, bool) or not isinstance(amount, (int, float)):
        raise TypeError(f"Expected argument `amount` to be an int or a float but got {type(amount).__name__}")
    if isinstance(amount, int):
        check_int("amount", amount, minimum=0)
    else:
        check_float("amount", amount, minimum=0.0, maximum=1.0)


def _units_to_prune(amount: int | float, available: int) -> int:
    """How many of ``available`` units ``amount`` prunes (a fraction is rounded, as torch does)."""
    k = amount if isinstance(amount, int) else round(amount * available)
    if k > available:
        raise ValueError(f"Expected argument `amount` to prune at most {available} units but got {amount}")
    return int(k)


class _CausalUnitPruning(pytorch_prune.BasePruningMethod):
    """Structured pruning of whole units by counterfactual importance; see :func:`causal_pruning_fn`."""

    PRUNING_TYPE = "unstructured"  # ModelPruning/global_unstructured accept only this type; the mask is per unit
    parameters_to_prune: list[tuple[nn.Module, str]] = []
    config: dict[str, Any] = {}

    def __init__(self, amount: int | float) -> None:
        _check_amount(amount)
        self.amount = amount

    @classmethod
    def prune(cls, amount: int | float) -> None:
        """Prune ``amount`` units now (``torch.nn.utils.prune.global_unstructured``)."""
        pytorch_prune.global_unstructured(cls.parameters_to_prune, pruning_method=cls, amount=amount)

    def compute_mask(self, t: Tensor, default_mask: Tensor) -> Tensor:
        masks = [_current_mask(m, n) for m, n in self.parameters_to_prune]
        full = torch.cat([m.reshape(-1) for m in masks])
        if int((full == 1).sum()) != t.numel():
            raise RuntimeError(
                "The parameters being pruned are not this method's `parameters_to_prune`: pass "
                "`parameters_to_prune=method.parameters_to_prune` to ModelPruning (use_global_unstructured=True)"
            )
        cfg = self.config
        model = cfg["model"]
        device = next(model.parameters()).device
        probe = tuple(x.to(device) for x in cfg["probe"]) if isinstance(cfg["probe"], tuple) else cfg["probe"].to(device)
        scores = causal_unit_scores(model, probe, cfg["layers"], cfg["target"], max_batch_size=cfg["max_batch_size"],
                                    output=cfg.get("output"))
        alive = {}
        for (module, name), mask in zip(self.parameters_to_prune, masks):
            if name == "weight":
                alive[module] = mask.flatten(1).any(1)
        doomed = self._choose(scores, alive)
        new = [mask.clone() for mask in masks]
        for (module, _name), mask in zip(self.parameters_to_prune, new):
            mask[doomed.get(module, [])] = 0
        return torch.cat([m.reshape(-1) for m in new])[full == 1].to(default_mask.dtype)

    def _choose(self, scores: dict[str, Tensor], alive: dict[nn.Module, Tensor]) -> dict[nn.Module, list[int]]:
        modules = [resolve_module(self.config["model"], layer) for layer in self.config["layers"]]
        candidates = [(float(scores[layer][u]), i, u) for i, (layer, m) in enumerate(zip(self.config["layers"], modules))
                      for u in alive[m].nonzero().flatten().tolist()]
        pools = [candidates] if self.config["scope"] == "global" else [[c for c in candidates if c[1] == i] for i in range(len(modules))]
        left = {i: int(alive[m].sum()) for i, m in enumerate(modules)}
        doomed: dict[nn.Module, list[int]] = {}
        for pool in pools:
            k = _units_to_prune(self.amount, len(pool))
            for _score, i, u in sorted(pool):
                if k == 0:
                    break
                if left[i] > 1:  # keep at least one unit per layer
                    doomed.setdefault(modules[i], []).append(u)
                    left[i] -= 1
                    k -= 1
        return doomed
