"""A model frozen for reading: the copies the backdoor code keeps beside the model it trains or explains (the repair
term's consistency reference, Feature Shift Tuning's shifted copy) run in eval mode, train nothing and keep the
quantization scales they were made with, and are made by :func:`copied`."""

from __future__ import annotations

import copy
import weakref
from typing import Any

from torch import Tensor, nn

from lightning_causal.causal.engine.kept_attributes import _is_dict, helper_objects
from lightning_causal.causal.engine.lazy_modules import check_built
from lightning_causal.causal.engine.state import observers_off

__all__ = ["copied", "freeze"]


def copied(model: nn.Module, memo: dict[int, Any] | None = None) -> nn.Module:
    """``copy.deepcopy(model, memo)``, where the values that ``deepcopy`` cannot copy as they are, held as plain
    attributes by ``model``'s modules or the helper objects they hold
    (:func:`~lightning_causal.causal.engine.kept_attributes.helper_objects`), in the dicts, lists and tuples these
    hold at any depth, are copied so: a weak proxy (``weakref.proxy(peer)``) is held as itself, as ``deepcopy``
    holds a ``weakref.ref`` (a dead one failed the copy, a live one was copied through to its object); a tensor
    computed with autograd (``torch.nn.utils.prune``'s ``weight = weight_orig * weight_mask``, set with the gradient on
    when a trainable layer is pruned or runs a training pass; the weight of the older ``spectral_norm`` and
    ``weight_norm`` hooks after one), which ``deepcopy`` refuses (graph leaves only), is copied detached: the copy's own
    forward pre-hook computes it again from the copy's parameters.

    Args:
        model: the model to copy (unchanged).
        memo: ``deepcopy``'s memo (``id`` -> the copy's value), given values included; ``None``: an empty one.

    Examples:
        >>> import torch
        >>> import torch.nn.utils.prune as prune
        >>> net = prune.l1_unstructured(nn.Linear(4, 2), "weight", amount=0.5)  # `weight` has a grad_fn
        >>> copy_ = copied(net)
        >>> copy_.weight.grad_fn is None, bool(torch.equal(copy_.weight, net.weight)), len(copy_._forward_pre_hooks)
        (True, True, 1)
    """
    memo = {} if memo is None else memo
    for holder in [*model.modules(), *(obj for _, obj in helper_objects(model))]:
        for v in _uncopyable(vars(holder)):
            if id(v) not in memo:
                memo[id(v)] = v if type(v) in weakref.ProxyTypes else v.detach().clone()
    return copy.deepcopy(model, memo)


def _uncopyable(attributes: dict[str, Any]) -> list[Any]:
    """The weak proxies and the tensors with a ``grad_fn`` among ``attributes``' values and in the dicts (any subclass:
    an ``OrderedDict``, a ``defaultdict``; :func:`~lightning_causal.causal.engine.kept_attributes._is_dict`, as the
    kept attributes read them), lists and tuples they hold, at any depth, each container once."""
    found, todo, seen = [], [attributes], set()
    while todo:
        x = todo.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        for v in x.values() if isinstance(x, dict) else x:
            if type(v) in weakref.ProxyTypes or (isinstance(v, Tensor) and v.grad_fn is not None):
                found.append(v)
            elif _is_dict(v) or isinstance(v, (list, tuple)):
                todo.append(v)
    return found


def freeze(model: nn.Module) -> nn.Module:
    """``model`` frozen in place and returned: eval mode, no parameter requiring a gradient, and the observers of a
    quantization-aware model's fake-quant modules off (:func:`~lightning_causal.causal.engine.state.observers_off`:
    they would move its ranges and scales with every batch it runs, in eval mode too; it quantizes with the scales it
    holds).

    Args:
        model: the model to freeze (a copy the caller owns: it is changed, not copied).

    Examples:
        >>> import torch.ao.quantization as tq
        >>> net = nn.Sequential(nn.Linear(2, 2), tq.FakeQuantize())
        >>> frozen = freeze(net)
        >>> frozen is net, net.training, any(p.requires_grad for p in net.parameters()), int(net[1].observer_enabled)
        (True, False, False, 0)
    """
    check_built(model)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    observers_off(model)
    return model
