"""On Python 3.10 (simulated: ``lightning_causal._compat.NOTES`` off) ``with_note`` kept the notes of an error of a
built-in class given no argument (``AssertionError()``, a bare ``raise RuntimeError``) but showed none: its text is its
arguments', none, and a built-in class cannot be given the subclass that prints them. It is now given an empty message
printing them."""

import pickle
import traceback

import lightning_causal._compat as compat


class Bare(Exception):
    """A user's error given no argument: the subclass prints its notes, its arguments kept."""


def test_an_error_of_no_argument_shows_its_notes(monkeypatch):
    monkeypatch.setattr(compat, "NOTES", False)
    err = compat.with_note(compat.with_note(AssertionError(), "one"), "two")
    assert str(err) == "one\ntwo" and type(err) is AssertionError
    assert traceback.format_exception_only(type(err), err)[-1].strip() == "AssertionError: one\ntwo"
    assert str(pickle.loads(pickle.dumps(err))) == "one\ntwo"
    bare = compat.with_note(Bare(), "three")
    assert str(bare) == "three" and bare.args == () and isinstance(bare, Bare)  # a blank first line before
