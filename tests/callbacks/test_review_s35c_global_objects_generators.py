"""Review of bc682f26: an ``unpack_batch`` that reads a generator by a global name was restored after the probe read, but
not one that reaches it through a global object its code names: a diffusion user's noise schedule kept at module level
(``sched = Schedule(seed)``, ``sched.q_sample(x0)`` drawing ``t`` and the noise from ``self.g``), a dict of generators, a
``functools.partial(torch.randn, generator=G)`` or a bound method (``rng.normal``) left the generator advanced by the
read, so every later training step that draws from it drew other timesteps and noise than without the audits. Every
global the code names is now walked as the other parts of a function are (modules and classes are not)."""

from __future__ import annotations

import functools

import numpy as np
import torch

from lightning_causal.callbacks._probe import probe_from
from lightning_causal.data_reading import rngs_untouched

STEPS = 10


class Schedule:
    """A DDPM noise schedule that draws the timesteps and the noise from its own generator."""

    def __init__(self, seed: int) -> None:
        self.g = torch.Generator().manual_seed(seed)
        self.abar = torch.linspace(0.99, 0.2, STEPS)

    def q_sample(self, x0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = torch.randint(0, STEPS, (len(x0),), generator=self.g)
        a = self.abar[t].view(-1, *[1] * (x0.dim() - 1))
        return a.sqrt() * x0 + (1 - a).sqrt() * torch.randn(x0.shape, generator=self.g), t


SCHED = Schedule(3)
GENERATORS = {"noise": torch.Generator().manual_seed(4)}
G_PARTIAL = torch.Generator().manual_seed(5)
RANDN = functools.partial(torch.randn, generator=G_PARTIAL)
RNG = np.random.default_rng(6)
NORMAL = RNG.normal


def by_schedule(batch):
    return SCHED.q_sample(batch[0]), None, None


def by_dict(batch):
    return batch[0] + torch.randn(batch[0].shape, generator=GENERATORS["noise"])


def by_partial(batch):
    return batch[0] + RANDN(batch[0].shape)


def by_bound_method(batch):
    return batch[0] + torch.as_tensor(NORMAL(size=tuple(batch[0].shape)), dtype=batch[0].dtype)


def _state(rng):
    return rng.get_state().clone() if isinstance(rng, torch.Generator) else repr(rng.bit_generator.state)


def _same(a, b):
    return torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b


def test_generators_held_by_global_objects_are_restored():
    x0 = torch.rand(4, 1, 4, 4)
    for function, rng in ((by_schedule, SCHED.g), (by_dict, GENERATORS["noise"]), (by_partial, G_PARTIAL),
                          (by_bound_method, RNG)):
        before = _state(rng)
        with rngs_untouched(function):
            function((x0,))
        assert _same(_state(rng), before), function.__name__


def test_the_probe_read_through_a_global_schedule_leaves_it_where_it_stands():
    x0 = torch.rand(12, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    SCHED.g.manual_seed(3)
    before = SCHED.g.get_state()
    probe = probe_from((x0, torch.zeros(12)), 8, unpack_batch=by_schedule, model=torch.nn.Conv2d(1, 1, 1))
    assert torch.equal(SCHED.g.get_state(), before)
    assert probe.inputs[0].shape == (8, 1, 4, 4) and probe.inputs[1].shape == (8,)
    # training's next draw is the one it would have made without the read
    assert torch.equal(torch.randint(0, STEPS, (12,), generator=SCHED.g),
                       torch.randint(0, STEPS, (12,), generator=torch.Generator().manual_seed(3)))
