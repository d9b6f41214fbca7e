"""The context in which the callback runs audits: whatever they do, training cannot tell."""

from __future__ import annotations

import contextlib
import random
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from lightning_causal.causal.engine.generators import active_generators, generators_registered
from lightning_causal.causal.engine.init_writes import init_writes_kept
from lightning_causal.causal.engine.inner_steps import inner_steps_kept
from lightning_causal.causal.engine.kept_attributes import buffer_of, keep_attributes
from lightning_causal.causal.engine.lazy_modules import check_built
from lightning_causal.causal.engine.param_writes import param_writes_refused
from lightning_causal.causal.engine.state import (
    eval_mode,
    observers_off,
    renorms_kept,
    rng_preserved,
)
from lightning_causal.causal.engine.user_frame import outside_package

__all__ = ["AUDIT_SEED", "audit_seed", "hooks_removed", "no_trace"]

#: The seed of the global generators every audit of a fit starts from.
AUDIT_SEED = 0


@contextlib.contextmanager
def audit_seed(seed: int = AUDIT_SEED) -> Iterator[None]:
    """Run an audit from the global torch (CPU and CUDA), NumPy and ``random`` generators seeded with
    ``seed``, their states restored afterwards. The audits draw from private generators; what
    draws from these is a model that samples in eval mode (MC dropout kept on): every audit of the
    same weights then sees the same noise, whatever training drew before (epochs compare effects at
    one noise, a resumed fit gives the uninterrupted fit's numbers, every process draws alike).
    Inside :func:`no_trace`, the generators the model holds itself are seeded with ``seed`` too
    (``no_trace`` restores them)."""
    with rng_preserved():
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
        for g in active_generators():
            g.manual_seed(seed)
        yield


@contextlib.contextmanager
def no_trace(module: torch.nn.Module) -> Iterator[None]:
    """Run audits in eval mode so that training cannot tell: grads (the same tensor objects, sparse ones too: an
    ``nn.Embedding(sparse=True)``'s), the weights an ``nn.Embedding(max_norm=...)`` renormalises in place at every
    lookup (:func:`~lightning_causal.causal.engine.state.renorms_kept`), the parameters a module initialises from its first
    batch (Glow's ActNorm: :func:`~lightning_causal.causal.engine.init_writes.init_writes_kept`), the parameters an
    optimizer stepped inside forward and its state (test-time adaptation, a forward keeping them refused:
    :func:`~lightning_causal.causal.engine.inner_steps.inner_steps_kept`),
    requires_grad, buffers (the same tensor objects, also where a forward pass reassigned one or filled one registered
    as ``None``, which is ``None`` again after), tensors kept as plain attributes (a recurrent state carried across batches)
    and numbers, strings, bools and ``None`` (a call counter, ``self.calls += 1``; a mode, ``self.mode = "long"``; also a
    numpy array or a set, updated in place too, or a dict of them; an attribute the audits' passes create is removed), the same of a datastore object a module holds (``self.store.keys``, ``self.store.ptr``: :func:`~lightning_causal.causal.engine.kept_attributes.helper_objects`), every submodule's mode and the RNG states restored (the global
    generators and those the model holds itself, :mod:`~lightning_causal.causal.engine.generators`);
    a quantization-aware model's fake-quant observers off inside (their flags are buffers, restored), so that an audit
    of your own that runs the model itself sees it on the scales it holds, as the package's estimators do
    (:func:`~lightning_causal.causal.engine.state.observers_off`); outside ``inference_mode`` so that gradient-based
    audits can use autograd."""
    check_built(module)
    params = list(module.parameters())
    grads = [(p.grad, None if p.grad is None else p.grad.detach().clone()) for p in params]
    requires = [p.requires_grad for p in params]
    # a buffer registered as None (a state the forward fills lazily) is kept too: set back to None after the audits
    buffers = [(m, name, b, None if b is None else b.detach().clone()) for m in module.modules()
               for name, b in m._buffers.items() if b is None or isinstance(b, torch.Tensor)]
    # a recurrent state carried across batches (self.h = h.detach()), and numbers, strings, bools and None a forward pass
    # sets (a call counter a Gumbel-softmax temperature anneals by, self.calls += 1; self.mode = "long"): training goes
    # on from the values it left; the buffers'
    # values are copied above, once
    attributes = keep_attributes(module, numbers=True, helpers=True)  # a datastore in an object of its own too
    modes = [(m, m.training) for m in module.modules()]
    try:
        # an optimizer stepped by forward (test-time adaptation): its parameters put back, a forward keeping them refused
        # (the grads' values copied above); before eval(): a LoRA layer's train(False) merges its update into its weight
        # the values written and not put back by the blocks inside (a LoRA layer merging by an int counter) refused
        with param_writes_refused(module), init_writes_kept(module), inner_steps_kept(module, grads=False):
            eval_mode(module)  # module.eval(), also on torch.export's modules, which refuse it
            observers_off(module)  # a QAT model's fake-quant observers: an audit of your own runs on the scales it holds
            # an nn.Embedding(max_norm=...) renormalises the rows it looks up in place: its weight copied once for the audit
            with torch.inference_mode(False), rng_preserved(), generators_registered(module), renorms_kept(module):
                yield
    finally:
        with torch.no_grad():
            for p, (grad, saved), r in zip(params, grads, requires):
                p.requires_grad_(r)
                # torch.equal takes no sparse tensor (an nn.Embedding(sparse=True)'s gradient): copied back as it is
                if grad is not None and (grad.layout != torch.strided or not torch.equal(grad, saved)):
                    grad.copy_(saved)
                if p.grad is not grad:  # keep the very tensor object (optimizers, DDP bucket views hold it)
                    p.grad = grad
            for m, name, b, saved in buffers:
                if buffer_of(m, name) is not b:  # reassigned (`self.h = h.detach()`, of the probe's batch size)
                    m._buffers[name] = b
                if b is not None and not torch.equal(b, saved):
                    b.copy_(saved)
        attributes.restore()
        for m, mode in modes:
            m.training = mode


#: the hook dictionaries of a module whose hooks change a forward or backward pass, with the dictionaries
#: that hold extra flags under the same handle id (torch's ``RemovableHandle`` removes from those too)
_MODULE_HOOKS = {
    "_forward_pre_hooks": ("_forward_pre_hooks_with_kwargs",),
    "_forward_hooks": ("_forward_hooks_with_kwargs", "_forward_hooks_always_called"),
    "_backward_pre_hooks": (),
    "_backward_hooks": (),
}
#: the hook dictionaries of a parameter (``p.register_hook``, ``p.register_post_accumulate_grad_hook``)
_PARAMETER_HOOKS = ("_backward_hooks", "_post_accumulate_grad_hooks")


def _hook_ids(module: torch.nn.Module) -> dict[tuple[str, str], set[Any]]:
    """The handle ids of every hook on ``module``'s submodules and parameters, by ``(owner name, dictionary)``."""
    ids: dict[tuple[str, str], set[Any]] = {}
    for name, m in module.named_modules():
        for attr in _MODULE_HOOKS:
            ids[(name, attr)] = set(getattr(m, attr, None) or ())
    for name, p in module.named_parameters():
        for attr in _PARAMETER_HOOKS:
            ids[(name, attr)] = set(getattr(p, attr, None) or ())
    return ids


@contextlib.contextmanager
def hooks_removed(module: torch.nn.Module, who: str) -> Iterator[None]:
    """Remove the hooks that the block (``who``: an audit of your own) registers on ``module``'s submodules or
    parameters and leaves there, with a warning naming them: a forward hook left after a failed run would
    change every later training step. The hooks there before the block are kept (never another library's)."""
    before = _hook_ids(module)
    try:
        yield
    finally:
        left = []
        owners = {**dict(module.named_modules()), **dict(module.named_parameters())}
        for (name, attr), ids in _hook_ids(module).items():
            new = ids - before.get((name, attr), set())
            if not new:
                continue
            owner = owners[name]
            for extra in (getattr(owner, attr), *(getattr(owner, e) for e in _MODULE_HOOKS.get(attr, ()))):
                for i in new:
                    extra.pop(i, None)
            left.append(f"{len(new)} {attr.strip('_').replace('_', ' ')[:-1]} on {name or 'the model'!r}")
        if left:
            warnings.warn(f"{who} left {', '.join(left)} after its run; removed, so that training cannot tell. Remove the "
                          "hooks an audit registers in a `finally` (`handle.remove()`), or register them with "
                          "`intervene`/`capture`, whose context managers do", UserWarning, stacklevel=outside_package())
