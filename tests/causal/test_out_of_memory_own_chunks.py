"""The loops that chunk rows by themselves (path_effects' sweep, layer_trace's traced interventions, the frontier
gradients of method="attribution") share map_rows' out-of-memory retry (each_chunk): a chunk that runs the device out
of memory runs again in halves, the numbers unchanged."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from lightning_causal._compat import OutOfMemoryError
from lightning_causal.causal import causal_graph, layer_causal_map, unit_effects
from lightning_causal.causal.engine.batching import (
    RowShard,
    each_chunk,
    map_rows,
    remembered_fit,
    sharded_rows,
)


class _Gate(nn.Module):
    """Identity whose passes of more than ``limit`` rows fail as a full device would (with ``grad``: only passes that
    build a graph, as backward passes take the most memory). Not traceable by torch.fx (a data-dependent branch), so
    every suffix pass runs it."""

    def __init__(self, limit, grad=False):
        super().__init__()
        self.limit, self.grad, self.tally = limit, grad, SimpleNamespace(failed=0)

    @property
    def failed(self) -> int:
        """The failed passes, counted in a namespace: a number attribute is put back by ``audit_mode`` as the model's state."""
        return self.tally.failed

    def forward(self, x):
        if x.shape[0] > self.limit and (torch.is_grad_enabled() or not self.grad):
            self.tally.failed += 1
            raise OutOfMemoryError(f"CUDA out of memory: a pass of {x.shape[0]} rows")
        return x


def _net(limit, grad=False):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3), _Gate(limit, grad))


X8 = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
X16 = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))


def _tight(run, limit, grad=False):
    free, tight = run(_net(10**6)), _net(limit, grad)
    with pytest.warns(UserWarning, match="ran the device out of memory"):
        got = run(tight)
    assert tight[-1].failed >= 1  # the retry was needed
    return free, got


def _assert_same(a, b):
    """The same structure of the same values (floats up to round-off); timings left out."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            if "seconds" not in str(k):
                _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for u, v in zip(a, b):
            _assert_same(u, v)
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-7, nan_ok=True)
    else:
        assert a == b


def test_causal_graph_path_sweep_is_retried():
    free, got = _tight(lambda m: causal_graph(m, X8, ["1", "3"], max_batch_size=32), limit=8)  # the clean pass: 8 rows
    assert got.edges  # edges between the layers: the path sweep ran
    _assert_same(got.to_dict(), free.to_dict())


def test_layer_map_traced_interventions_are_retried():
    free, got = _tight(lambda m: layer_causal_map(m, X8, layers=["1", "3"], max_batch_size=32), limit=8)
    _assert_same(got.to_dict(), free.to_dict())


def test_frontier_gradients_of_the_attribution_estimate_are_retried():
    # layer "0" (Linear) then ReLU: the estimate linearises at the input of "2", in chunks of samples with gradients
    free, got = _tight(lambda m: unit_effects(m, X16, "0", method="attribution", max_batch_size=16), limit=4, grad=True)
    torch.testing.assert_close(got, free)


def test_each_chunk_retries_alone_and_not_while_processes_share_the_rows():
    sizes = []

    def fn(idx):
        sizes.append(idx.numel())
        if idx.numel() > 2:
            raise OutOfMemoryError("CUDA out of memory")
        return idx.tolist()

    with pytest.warns(UserWarning, match="out of memory"):
        assert each_chunk(5, 4, fn, torch.device("cpu")) == [[0, 1], [2, 3], [4]]
    assert sizes == [4, 2, 2, 1]
    # fn may run map_rows, whose collectives every process must call in the same chunks: raised as it is
    with sharded_rows(RowShard(0, 2, lambda t: torch.stack([t, t]))), pytest.raises(OutOfMemoryError):
        each_chunk(5, 4, fn, torch.device("cpu"))


def test_while_processes_share_the_rows_the_chunks_are_those_asked_for_whatever_was_learnt():
    # a share learnt by this process's map_rows must not change the chunks of a loop whose passes hold collectives
    def tight(idx):
        if idx.numel() > 2:
            raise OutOfMemoryError("CUDA out of memory")
        return idx.double()

    sizes = []
    with remembered_fit(), pytest.warns(UserWarning, match="out of memory"):
        map_rows(8, 8, tight, torch.device("cpu"))  # learns: a quarter fits
        with sharded_rows(RowShard(0, 2, lambda t: torch.stack([t, t]))):
            each_chunk(8, 8, lambda idx: sizes.append(idx.numel()), torch.device("cpu"))
        each_chunk(8, 8, lambda idx: sizes.append(idx.numel()), torch.device("cpu"))  # alone: the share applies
    assert sizes == [8, 2, 2, 2, 2]
