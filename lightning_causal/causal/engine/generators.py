"""Random generators a model holds itself (``self.gen = torch.Generator()``, drawn from with
``torch.randn(..., generator=self.gen)``), beside the global ones.

:func:`~.state.audit_mode` restores their states as it restores the global generators' (an audit
must not move the noise the training draws next), and registers them for the block it runs, so that
the noise checks see a draw from them (:func:`~.noise.generator_states`) and common random numbers
seed them (:class:`~.noise.CommonNoise`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

import torch
from torch import nn

__all__ = ["active_generators", "module_generators", "generators_registered"]

_ACTIVE: ContextVar[tuple[torch.Generator, ...]] = ContextVar("lightning_causal_model_generators", default=())
#: The attributes every ``nn.Module`` has (parameters, buffers, submodules, hooks): never a user's generator, and
#: walking their values dominated the search (2.3 ms on a 231-module BERT, per estimator call).
_MODULE_INTERNALS = frozenset(vars(nn.Module()))


def module_generators(model: nn.Module) -> list[torch.Generator]:
    """The ``torch.Generator`` objects ``model``'s modules hold as attributes, directly or in a list,
    tuple or dict attribute, each once.

    Examples:
        >>> class Noisy(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.gen = torch.Generator().manual_seed(0)
        >>> len(module_generators(nn.Sequential(Noisy(), nn.Linear(2, 2)))), len(module_generators(nn.Linear(2, 2)))
        (1, 0)
    """
    found: dict[int, torch.Generator] = {}
    for m in model.modules():
        for key, value in vars(m).items():
            if key in _MODULE_INTERNALS:
                continue
            if isinstance(value, torch.Generator):
                found.setdefault(id(value), value)
            elif isinstance(value, (list, tuple, dict)):
                for g in value.values() if isinstance(value, dict) else value:
                    if isinstance(g, torch.Generator):
                        found.setdefault(id(g), g)
    return list(found.values())


def active_generators() -> tuple[torch.Generator, ...]:
    """The model generators registered by the :func:`generators_registered` blocks around this call."""
    return _ACTIVE.get()


@contextlib.contextmanager
def generators_registered(model: nn.Module, restore: bool = True) -> Iterator[list[torch.Generator]]:
    """Inside the block, ``model``'s own generators (:func:`module_generators`) are among
    :func:`active_generators`; with ``restore``, their states are put back on exit, also on
    exceptions."""
    own = module_generators(model)
    states = [g.get_state() for g in own] if restore else []
    token = _ACTIVE.set(_ACTIVE.get() + tuple(g for g in own if all(g is not h for h in _ACTIVE.get())))
    try:
        yield own
    finally:
        _ACTIVE.reset(token)
        for g, state in zip(own, states):
            g.set_state(state)
