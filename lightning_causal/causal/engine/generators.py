"""Random generators a model holds itself (``self.gen = torch.Generator()``, drawn from with
``torch.randn(..., generator=self.gen)``), beside the global ones.

:func:`~.state.audit_mode` restores their states as it restores the global generators' (an audit
must not move the noise the training draws next), and registers them for the block it runs, so that
the noise checks see a draw from them (:func:`~.noise.generator_states`) and common random numbers
seed them (:class:`~.noise.CommonNoise`).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import numpy as np
import torch
from torch import nn

from lightning_causal.causal.engine.kept_attributes import instance_of

__all__ = ["RNG_TYPES", "active_generators", "generators_registered", "model_rngs_kept", "module_generators",
           "rng_state", "set_rng_state"]

#: the generator objects whose state can be read and put back: torch's, ``random``'s and NumPy's
RNG_TYPES = (torch.Generator, random.Random, np.random.Generator, np.random.RandomState)

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
    return _held(model, (torch.Generator,))


def _held(model: nn.Module, kinds: tuple[type, ...]) -> list[Any]:
    """The objects of ``kinds`` that ``model``'s modules hold as attributes, directly or in a list, tuple or dict
    attribute, each once."""
    found: dict[int, Any] = {}
    for m in model.modules():
        for key, value in vars(m).items():
            if key in _MODULE_INTERNALS:
                continue
            if _is_kind(value, kinds):
                found.setdefault(id(value), value)
            elif instance_of(value, (list, tuple, dict)):
                for g in value.values() if isinstance(value, dict) else value:
                    if _is_kind(g, kinds):
                        found.setdefault(id(g), g)
    return list(found.values())


def _is_kind(value: Any, kinds: tuple[type, ...]) -> bool:
    """Whether ``value`` is an object of ``kinds``, or a live weak proxy of one (``weakref.proxy(rng)``: a
    ``random.Random`` drawn through it, its state read and put back through it); a dead proxy is none (it fails any
    read, ``ReferenceError``)."""
    try:
        return isinstance(value, kinds)
    except ReferenceError:
        return False


def rng_state(rng: Any) -> Any:
    """The state of a generator object of :data:`RNG_TYPES` (``None``: ``random.SystemRandom``, which has none).

    Args:
        rng: a ``torch.Generator``, ``random.Random``, or NumPy ``Generator``/``RandomState``.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> state = rng_state(g)
        >>> first = torch.rand(1, generator=g)
        >>> set_rng_state(g, state)
        >>> torch.equal(first, torch.rand(1, generator=g))
        True
    """
    if isinstance(rng, torch.Generator):
        return rng.get_state()
    if isinstance(rng, np.random.Generator):
        return rng.bit_generator.state
    if isinstance(rng, np.random.RandomState):
        return rng.get_state()
    try:
        return rng.getstate()
    except NotImplementedError:  # random.SystemRandom: no state to restore
        return None


def set_rng_state(rng: Any, state: Any) -> None:
    """Put back a state :func:`rng_state` read (``None``: nothing to put back).

    Args:
        rng: the generator object the state was read from.
        state: what :func:`rng_state` returned for it.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> state = rng_state(rng)
        >>> first = rng.random()
        >>> set_rng_state(rng, state)
        >>> first == rng.random()
        True
    """
    if state is None:
        return
    if isinstance(rng, torch.Generator):
        rng.set_state(state)
    elif isinstance(rng, np.random.Generator):
        rng.bit_generator.state = state
    elif isinstance(rng, np.random.RandomState):
        rng.set_state(state)
    else:
        rng.setstate(state)


@contextlib.contextmanager
def model_rngs_kept(model: nn.Module) -> Iterator[None]:
    """Put back, on exit (also on exceptions), the states of the generator objects of :data:`RNG_TYPES` that
    ``model``'s modules hold (as :func:`module_generators` finds them): a block run twice from inside this
    draws the same numbers from them both times.

    Args:
        model: the model whose modules' generators are kept.

    Examples:
        >>> class Noisy(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.rng = np.random.default_rng(0)
        >>> model = Noisy()
        >>> with model_rngs_kept(model):
        ...     first = model.rng.random()
        >>> first == model.rng.random()
        True
    """
    held = _held(model, RNG_TYPES)
    states = [rng_state(r) for r in held]
    try:
        yield
    finally:
        for rng, state in zip(held, states):
            set_rng_state(rng, state)


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
