"""While ``CausalRepairModule`` set its terms up on training inputs it read itself, every warning of a term's set-up
was caught and warned again at the user's ``fit`` line (``inputs_named``), so that those naming `train_inputs` could
get words about those inputs appended by a string match: the others lost their own file and line (a custom term's
``warnings.warn`` in its ``setup``, a torch warning), which a user's filter by module or a look at the line then
missed. The words are now made at the source (``term_setup.inputs_said``) and no warning is caught."""

from __future__ import annotations

import inspect
import warnings

import torch
from torch import nn

from lightning_causal.repair.base import RepairTerm
from lightning_causal.repair.term_setup import inputs_said, read_words, set_up_terms


class _Noted(RepairTerm):
    needs_train_inputs = True

    def setup(self, model: nn.Module, train_inputs: torch.Tensor | None = None) -> None:
        self.said = inputs_said()
        warnings.warn("a note of the term's own set-up", UserWarning, stacklevel=1)  # this line

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return model(x).sum()


def _line() -> int:
    source, first = inspect.getsourcelines(_Noted.setup)
    return first + next(i for i, text in enumerate(source) if "warnings.warn(" in text)


def test_a_set_up_warning_keeps_its_file_and_line_and_is_shown_once() -> None:
    term = _Noted()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        set_up_terms([term], nn.Linear(3, 2), {}, [], lambda fresh, check_only: torch.zeros(4, 3), read=True)
    shown = [w for w in caught if "a note of the term's own set-up" in str(w.message)]
    assert len(shown) == 1
    assert (shown[0].filename, shown[0].lineno) == (__file__, _line())
    assert str(shown[0].message) == "a note of the term's own set-up"


def test_the_words_about_read_inputs_are_made_where_the_message_is() -> None:
    term = _Noted()
    set_up_terms([term], nn.Linear(3, 2), {}, [], lambda fresh, check_only: torch.zeros(4, 3), read=True)
    assert term.said == f" (`train_inputs`: {read_words(4)})"
    set_up_terms([term], nn.Linear(3, 2), {}, [], lambda fresh, check_only: torch.zeros(4, 3), read=False)
    assert term.said == "" and inputs_said() == ""
