"""A chunk of rows that runs the device out of memory runs again in halves (map_rows), same values."""

import gc
import weakref

import pytest
import torch
from torch import nn

from lightning_causal._compat import OutOfMemoryError
from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.batching import RowShard, map_rows, sharded_rows
from tests.helpers.out_of_memory import failing_above


def test_a_chunk_out_of_memory_is_halved_until_it_fits_and_gives_the_same_values():
    fn, calls = failing_above(3)
    with pytest.warns(UserWarning, match=r"pass of 8 rows ran the device out of memory; it ran again in passes of 2 rows"):
        out = map_rows(11, 8, fn, torch.device("cpu"))
    assert torch.equal(out, torch.arange(11).double() * 10)
    assert calls == [8, 4, 2, 2, 2, 2, 2, 1]  # the rest of the computation keeps the size that fit


def test_other_errors_and_a_single_row_out_of_memory_are_raised_as_they_are():
    fn, _ = failing_above(3, error=ValueError)
    with pytest.raises(ValueError, match="Tried to allocate"):
        map_rows(11, 8, fn, torch.device("cpu"))
    fn, calls = failing_above(0)
    with pytest.raises(OutOfMemoryError):
        map_rows(4, 4, fn, torch.device("cpu"))
    assert calls == [4, 2, 1]


class _Tight(nn.Module):
    """A model whose passes of more than ``limit`` rows fail as a full device would."""

    def __init__(self, limit):
        super().__init__()
        self.fc, self.limit = nn.Linear(6, 3), limit

    def forward(self, x):
        if x.shape[0] > self.limit:
            raise RuntimeError(f"out of memory: {x.shape[0]} rows")
        return self.fc(x)


def test_input_effects_on_a_device_too_small_for_its_chunks_equal_the_unconstrained_values():
    torch.manual_seed(0)
    x = torch.randn(12, 6)
    free = _Tight(10**6)
    tight = _Tight(12)  # the clean pass of 12 samples fits; the chunks of 12 x 6 rows do not
    tight.load_state_dict(free.state_dict())
    expected = input_effects(free, x, target=1, max_batch_size=72)
    with pytest.warns(UserWarning, match="out of memory"):
        got = input_effects(tight, x, target=1, max_batch_size=72)
    torch.testing.assert_close(got, expected)


def test_a_failed_chunk_of_a_process_sharing_the_rows_leaves_no_tensor_behind():
    # before: map_rows kept the error in a local variable of the frame its traceback holds (a cycle), and with it the
    # failed chunk's tensors, until the cyclic garbage collector ran
    taken = []

    def fn(idx):
        activations = torch.empty(idx.numel(), 1000)
        taken.append(weakref.ref(activations))
        raise ValueError("a bad chunk")

    def gather(t):  # two processes: the other one's status and rows are this one's
        return torch.stack([t, t])

    gc.collect()
    gc.disable()  # reference counting alone: what a cycle holds stays
    try:
        with pytest.raises(ValueError, match="a bad chunk"), sharded_rows(RowShard(0, 2, gather, min_rows=1)):
            map_rows(8, 4, fn, torch.device("cpu"))
        assert len(taken) == 1 and taken[0]() is None
    finally:
        gc.enable()


def test_the_cuda_cache_is_emptied_before_a_retry_also_when_the_rows_are_on_the_cpu(monkeypatch):
    # SobolAudit's rows (its samples) are on the CPU while its model's passes run on the GPU; before: the cache was
    # emptied only where the row indices were on a CUDA device
    emptied = []
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))
    fn, calls = failing_above(3)
    with pytest.warns(UserWarning, match="out of memory"):
        map_rows(8, 8, fn, torch.device("cpu"))
    assert calls == [8, 4, 2, 2, 2, 2] and len(emptied) == 2  # once before each smaller try


def test_the_failed_chunk_s_tensors_are_freed_before_its_halves_run():
    # the retry runs outside the except block: the error, whose traceback holds the failed pass's frames, is gone
    taken, alive_at_call = [], []

    def fn(idx):
        alive_at_call.append([ref() is not None for ref in taken])
        activations = torch.empty(idx.numel(), 1000)
        taken.append(weakref.ref(activations))
        if idx.numel() > 2:
            raise OutOfMemoryError("CUDA out of memory")
        return idx.double()

    gc.collect()
    gc.disable()  # reference counting alone
    try:
        with pytest.warns(UserWarning, match="out of memory"):
            map_rows(4, 4, fn, torch.device("cpu"))
    finally:
        gc.enable()
    assert alive_at_call[:2] == [[], [False]]  # the 4-row pass's tensor is gone when the first 2-row pass starts
