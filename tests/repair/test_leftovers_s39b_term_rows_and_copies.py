"""Leftovers of session 38 in BackdoorSuppressionTerm(path="units"). A suspect layer whose output folds its heads into
the rows ([rows * heads, T, d]) with as many positions T as the pass's rows was refused as sequence-first ("its second
axis has the rows"), though nothing says it is: it is told as rows flattened into the batch now (or, since the shape
fits both, a sequence-first output whose positions are a multiple of the rows: mends_s39b), and sequence-first alone
only where the module says batch_first=False or its first axis is no multiple of the rows. A ``copy.copy`` of the term
(or a ``copy.deepcopy`` of it beside its network) forgot the suspect layers seen to run in eval mode and the training
steps that skipped them: the copy, fine-tuning the same network, warned again of a layer the original had warned of."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

from tests.repair.test_leftovers_s38b_term_calls import LayerDrop, _batch, _term


class _FoldedHeads(nn.Module):
    """Two heads folded into the rows: ``[N, T, 4] -> [2N, T, 2]``."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        n, t, _ = h.shape
        return h.reshape(n, t, 2, 2).permute(0, 2, 1, 3).reshape(n * 2, t, 2)


class _Folding(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.inp, self.heads, self.head = nn.Linear(4, 4), _FoldedHeads(), nn.Linear(2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.heads(self.inp(x))
        return self.head(h.reshape(x.shape[0], 2, x.shape[1], 2).mean((1, 2)))


def test_heads_folded_into_the_rows_are_not_told_as_sequence_first():
    x, y = _batch(8, 16)  # 16 positions: as many as the pass's rows (8 clean, 8 stamped)
    with pytest.raises(ValueError, match=r"suspect layer 'heads'.*shape \[32, 16, 2\].*either rows flattened into the batch") as err:
        _term("heads", positions=16).loss(_Folding(), x, y)
    assert "is sequence-first" not in str(err.value)  # not told as sequence-first alone


def _never_warned_after(copied) -> list[str]:
    """The 'did not run in any of the 10 training steps' warnings of ``copied(term, model)`` run 10 steps, after the
    original warned at its 10th."""
    torch.manual_seed(0)
    model, (x, y) = LayerDrop(p=1.0), _batch()
    term = _term("blocks.0")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for _ in range(10):
            term.loss(model, x, y)
        assert len([w for w in seen if "did not run in any of the 10" in str(w.message)]) == 1
        term, model = copied(term, model)
        for _ in range(10):
            term.loss(model, x, y)
    return [str(w.message) for w in seen if "did not run in any of the 10" in str(w.message)][1:]


def test_a_shallow_copy_keeps_what_the_term_learnt_of_its_model():
    assert _never_warned_after(lambda term, model: (copy.copy(term), model)) == []


def test_a_deep_copy_beside_its_network_keeps_it_for_the_copied_network():
    def both(term, model):
        pair = copy.deepcopy({"model": model, "term": term})  # the network first, as CausalRepairModule holds it
        return pair["term"], pair["model"]

    assert _never_warned_after(both) == []
    assert _never_warned_after(lambda term, model: (copy.deepcopy(term), model)) == []  # the term alone: its model kept


class _TimeFirst(nn.Module):
    """A truly sequence-first output ``[T, N, d]`` from a module not saying batch_first=False."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h.transpose(0, 1)


class _Sequence(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.inp, self.steps, self.head = nn.Linear(4, 4), _TimeFirst(), nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.steps(self.inp(x)).mean(0))


def test_a_sequence_first_output_whose_positions_are_a_multiple_of_the_rows_is_told_as_both_causes():
    """mends_s39b: [32, 16, 4], 32 positions over the pass's 16 rows, was told as rows flattened into the batch only."""
    x, y = _batch(8, 32)
    with pytest.raises(ValueError, match=r"suspect layer 'steps'.*shape \[32, 16, 4\]") as err:
        _term("steps", positions=32).loss(_Sequence(), x, y)
    assert "flattened into the batch" in str(err.value) and "a sequence-first output ([T, rows, ...]" in str(err.value)
    assert "batch_first=True" in str(err.value)
