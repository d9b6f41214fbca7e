"""A warning an audit raised was shown again at every ``audit_model`` call (and every fit) from the same line, whatever
Python's default filter says ("default": once per message, category and line of a module): ``show_again`` passed it to
``warnings.warn_explicit`` with no registry, and a registry would not have helped, since each audit's recording
(``catch_warnings``) changes the filters and CPython clears the once-registries when they change. A notebook looping
over checkpoints saw the same warning N times. It is now shown once per line under "default" ("once": once per
message), again under "always", raised under "error", and again after the user changes the filters."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import audit_model
from lightning_causal.audits import InputEffectAudit
from lightning_causal.causal.engine.noise import RANDOM_MODEL


class _Noisy(nn.Module):
    """Dropout kept on in eval mode: every audit warns that the model draws random numbers."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, x):
        return self.lin(nn.functional.dropout(x, 0.2, training=True))


def _shown(action: str, calls: int = 3) -> list[str]:
    torch.manual_seed(0)
    model, x = _Noisy(), torch.randn(8, 3)
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter(action)
        for _ in range(calls):
            audit_model(model, InputEffectAudit(ace_values=None), x)  # one line, as a notebook's loop
    return [str(w.message) for w in shown if str(w.message).startswith(RANDOM_MODEL)]


def test_the_default_filter_shows_an_audits_warning_once_per_line():
    assert len(_shown("default")) == 1  # 3 before


def test_the_once_filter_shows_it_once():
    assert len(_shown("once")) == 1  # 3 before


def test_the_always_filter_shows_it_at_every_call():
    assert len(_shown("always")) == 3


def test_the_error_filter_raises_it():
    with pytest.raises(UserWarning, match=RANDOM_MODEL):
        _shown("error", calls=1)


def test_new_filters_show_it_again():
    # the same line under a fresh set of filters (a new catch_warnings): shown again, as Python's registry is cleared
    assert len(_shown("default")) == 1 and len(_shown("default")) == 1


def test_another_line_shows_it_again():
    torch.manual_seed(0)
    model, x = _Noisy(), torch.randn(8, 3)
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("default")
        audit_model(model, InputEffectAudit(ace_values=None), x)
        audit_model(model, InputEffectAudit(ace_values=None), x)
    assert sum(str(w.message).startswith(RANDOM_MODEL) for w in shown) == 2
