"""On Python 3.10 (no ``BaseException.add_note``) the notes the package adds to an error were lost at five sites that
called ``add_note`` behind ``hasattr`` (the audit's name in ``audit_model``, where the probe was read, the wrapped
module's backward), or crashed with ``AttributeError`` where they called it unguarded (the carried state's, the
reentrant checkpoint's, a linked forward argument's); ``with_note`` lost the note of an error whose class prints its own
text and printed a ``KeyError``'s note escaped inside its quotes. Every note now goes through ``with_note`` (simulated:
``lightning_causal._compat.NOTES`` off, the error without ``add_note``)."""

import pickle
import re
from pathlib import Path

import pytest
from torch import nn
from torch.utils.data import Dataset

import lightning_causal
import lightning_causal._compat as compat
from lightning_causal.callbacks._probe import probe_from
from lightning_causal.callbacks.posthoc import _name_audit
from lightning_causal.causal.engine.state import _note_wrapper_backward
from tests.helpers.lightning import SleepAudit


class NoNotes(RuntimeError):
    """An error as Python 3.10 makes it: no ``add_note``."""

    @property
    def add_note(self):
        raise AttributeError("add_note")


class Sized(Exception):
    """A user's error printing its own text, not its arguments."""

    def __init__(self, shape):
        self.shape = shape
        super().__init__(shape)

    def __str__(self):
        return f"bad shape {self.shape}"


def test_the_error_itself_shows_its_notes(monkeypatch):
    monkeypatch.setattr(compat, "NOTES", False)
    key = compat.with_note(KeyError("input_ids"), "a note")
    assert str(key) == "'input_ids'\na note" and key.args[0] == "input_ids"  # "'input_ids\\na note'" before
    sized = compat.with_note(compat.with_note(Sized((3, 4)), "one"), "two")
    assert str(sized) == "bad shape (3, 4)\none\ntwo" and isinstance(sized, Sized) and type(sized).__name__ == "Sized"
    back = pickle.loads(pickle.dumps(sized))
    assert type(back) is Sized and back.shape == (3, 4)


def test_the_sites_note_an_error_without_add_note(monkeypatch):
    monkeypatch.setattr(compat, "NOTES", False)
    err = NoNotes("audit failed")
    _name_audit(err, SleepAudit("sleepy", 0.0), nn.Linear(2, 2), None, 4)
    assert "Raised by audit 'sleepy' of audit_model" in str(err)
    err = NoNotes("refused: call fabric.backward(loss)")
    wrapper = nn.Module()
    wrapper.module = nn.Linear(2, 2)
    _note_wrapper_backward(wrapper, err)
    assert "Pass the wrapped module, `model.module`" in str(err)

    class Broken(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            raise NoNotes("corrupt file")

    with pytest.raises(NoNotes) as raised:
        probe_from(Broken(), 2, model=nn.Linear(2, 2))
    assert "Raised while reading the audits' probe" in str(raised.value)


def test_no_module_adds_a_note_but_through_with_note():
    root = Path(lightning_causal.__file__).parent
    calls = [f"{p.relative_to(root)}:{n}" for p in root.rglob("*.py") if p.name != "_compat.py"
             for n, line in enumerate(p.read_text().splitlines(), 1) if re.search(r"\.add_note\(|hasattr\(\w+, \"add_note\"\)", line)]
    assert calls == []
