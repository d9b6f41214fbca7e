"""Review of unit_rows.moving_rows (765e07c): which hidden-unit rows change the layer's output, compared bit for
bit where that is exact by construction.

- A ``Patch`` whose ``source`` holds fewer rows than samples was indexed by sample in ``moving_rows`` before
  ``unit_rows`` could refuse it: a bare ``IndexError`` instead of the ``ValueError`` naming ``source``.
- The values the brief asked about: ``Scale`` of 0.0 keeps 0.0 (left unrun) but a negative factor gives -0.0
  (runs); infinity times 2 is infinity (left unrun), times 0 a NaN (runs); a NaN differs from itself (runs).
- Rows shared among processes run every row (each process's own prefix could count other rows)."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from lightning_causal.causal import Patch, Scale, SetTo, Zero, unit_effects
from lightning_causal.causal.effects.unit_rows import moving_rows
from lightning_causal.causal.engine.batching import RowShard, sharded_rows
from lightning_causal.causal.engine.prefix_cache import cache_prefix
from lightning_causal.causal.engine.units import resolve_layout


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)).eval()


@pytest.mark.parametrize("rows", [5, 12])
def test_a_patch_of_another_row_count_is_refused_naming_source(rows) -> None:
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"`source` of Patch\(source\[" + str(rows) + r", 6\].*one row per sample explained \(8\)"):
        unit_effects(_mlp(), x, "1", Patch(torch.randn(rows, 6)))  # 5 rows: IndexError before


H = torch.tensor([[0.0, -0.0, float("inf"), float("-inf"), float("nan"), 3.0]])  # one sample, six units


@pytest.mark.parametrize(("iv", "moves"), [
    (Zero(), [False, True, True, True, True, True]),
    (SetTo(0.0), [False, True, True, True, True, True]),
    (Scale(2.0), [False, False, False, False, True, True]),
    (Scale(-1.0), [True, True, True, True, True, True]),
    (Scale(0.0), [False, False, True, True, True, True]),
])
def test_signed_zeros_infinities_and_nans_are_left_unrun_only_where_the_bits_stay(iv, moves) -> None:
    cache = SimpleNamespace(edits_value=True, value=H)  # what moving_rows reads of a prefix cache
    got = moving_rows(cache, [iv], torch.arange(6), resolve_layout(H.shape))
    assert got.tolist() == moves


def test_rows_shared_among_processes_run_every_row() -> None:
    model, x = _mlp(), torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        cache = cache_prefix(model, x, "1")
    layout = resolve_layout(cache.value.shape)
    alone = moving_rows(cache, [Zero()], torch.arange(6), layout)
    assert alone is not None and not bool(alone.all())  # ReLU units at 0: rows left unrun by one process
    with sharded_rows(RowShard(0, 2, lambda t: torch.stack([t, t]), min_rows=1)):
        assert moving_rows(cache, [Zero()], torch.arange(6), layout) is None
