"""``rngs_untouched`` compared every random state at its exit, for its five callers, where one (unpacked_rows' reader,
whether ``unpack_batch`` drew) reads the answer: it now reads the states again only with ``watch=True`` (re-read of
session 44's change); every state is restored either way."""

import random

import numpy as np
import torch

from lightning_causal import data_reading
from lightning_causal.data_reading import rngs_untouched


def test_states_read_again_only_where_watched(monkeypatch):
    calls = []
    real = data_reading._global_states
    monkeypatch.setattr(data_reading, "_global_states", lambda: calls.append(1) or real())
    gen = torch.Generator().manual_seed(3)
    before = (torch.random.get_rng_state(), np.random.get_state()[1].copy(), random.getstate(), gen.get_state())
    with rngs_untouched(gen) as drawn:
        torch.rand(3), np.random.rand(2), random.random(), torch.rand(2, generator=gen)
    assert calls == [] and drawn == []  # nothing compared, nothing said
    after = (torch.random.get_rng_state(), np.random.get_state()[1], random.getstate(), gen.get_state())
    assert torch.equal(before[0], after[0]) and np.array_equal(before[1], after[1]) and before[2] == after[2]
    assert torch.equal(before[3], after[3])  # restored all the same
    with rngs_untouched(gen, watch=True) as drawn:
        torch.rand(2, generator=gen)  # its own generator only
    assert drawn == [True] and len(calls) == 2
    with rngs_untouched(gen, watch=True) as drawn:
        pass
    assert drawn == [False]
