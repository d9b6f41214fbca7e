"""1ed7ea81 passed every ``weakref.proxy`` by in the search for a model's generators (``generators._held``), a live one
too: a ``random.Random`` a module draws from through ``weakref.proxy(rng)`` was no longer put back by
``model_rngs_kept`` (it was before). A live proxy of a generator is taken again; a dead one is still passed by
(review of leftovers_s45a)."""

from __future__ import annotations

import gc
import random
import weakref

import torch
from torch import nn

from lightning_causal.causal.engine.generators import model_rngs_kept


class _Net(nn.Module):
    def __init__(self, rng: random.Random, dead: object) -> None:
        super().__init__()
        self.lin, self.rng = nn.Linear(2, 2), weakref.proxy(rng)
        self.gone, self.peers = weakref.proxy(dead), [weakref.proxy(dead)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x) * (1.0 + self.rng.random())


class _Obj:
    pass


def test_a_generator_held_through_a_live_proxy_is_put_back_beside_dead_ones() -> None:
    rng, obj = random.Random(0), _Obj()
    model = _Net(rng, obj)
    del obj
    gc.collect()
    expected = random.Random(0).random()
    with model_rngs_kept(model):
        first = model.rng.random()
    assert first == expected and model.rng.random() == expected  # the same draw again: its state put back
