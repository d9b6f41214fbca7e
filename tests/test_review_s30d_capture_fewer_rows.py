"""capture on a block that adaptive computation repeats on the rows not yet halted kept the last call's output, whose
rows are not the pass's samples ([2, 3] for 4 samples), and said only "runs more than once per forward pass; capture
keeps its last call's output", the words of a cell unrolled over time, whose every call keeps the samples (newuser57's
report, review of bc06c330). The warning now says which call returned fewer rows than the first and where to capture."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import RepeatedCallsWarning, capture
from tests.helpers.halting import HaltingLoop


class Halting(HaltingLoop):
    """``block`` on every row, then on the rows still running: rows whose feature 2 is negative halt after one step."""

    def __init__(self) -> None:
        super().__init__(lambda _h, x: x[:, 2] > 0, steps=3, squash=lambda h: h)


class Unrolled(nn.Module):
    """A cell called at each of 3 steps on every row."""

    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(3):
            x = self.cell(x)
        return x


X = torch.tensor([[0.0, 1.0, -1.0], [1.0, 0.0, 2.0], [0.5, 0.5, -3.0], [2.0, 1.0, 1.0]])


def _said(model: nn.Module, name: str) -> tuple[torch.Size, list[str]]:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with capture(model, [name]) as acts:
            model(X)
            model(X)  # a second pass: said once
    return acts[name].shape, [str(w.message) for w in seen if issubclass(w.category, RepeatedCallsWarning)]


def test_a_block_on_the_rows_not_yet_halted_is_said_to_have_returned_fewer_rows():
    shape, said = _said(Halting(), "block")
    assert shape == (2, 3)  # rows 1 and 3 still running: not the 4 samples
    assert said == ["Module 'block' runs more than once per forward pass; capture keeps its last call's output, and its "
                    "call 2 returned 2 rows where its first call returned 4: a module called again on some of its rows "
                    "only (a block repeated on the rows not yet halted, a branch taken by some rows), whose later calls' "
                    "rows are not the pass's samples; capture an `nn.Identity` applied to the whole state where the rows "
                    "are put back together, at every step"]


def test_a_cell_called_on_every_row_at_each_step_keeps_the_former_words():
    shape, said = _said(Unrolled(), "cell")
    assert shape == (4, 3)
    assert said == ["Module 'cell' runs more than once per forward pass; capture keeps its last call's output"]


def test_rows_that_halt_at_a_later_call_are_said_in_a_second_warning():
    class Late(Halting):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.block(self.block(x))  # twice on every row: the plain warning
            return self.head(h.index_copy(0, torch.tensor([1]), self.block(h[[1]])))  # then on row 1 only

    shape, said = _said(Late(), "block")
    assert shape == (1, 3) and len(said) == 2
    assert said[0].endswith("keeps its last call's output") and "its call 3 returned 1 rows where its first call returned 4" in said[1]


@pytest.mark.parametrize("model, name", [(Halting(), "block"), (Unrolled(), "cell")])
def test_warn_repeats_false_says_nothing(model, name):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RepeatedCallsWarning)
        with capture(model, [name], warn_repeats=False):
            model(X)
