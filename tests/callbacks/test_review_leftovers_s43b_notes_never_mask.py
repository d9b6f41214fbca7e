"""``with_note`` on Python 3.10 (simulated: ``lightning_causal._compat.NOTES`` off) reads the error's text and may give
it a subclass of its class: an error whose ``__str__`` raises, or whose class refuses a subclass in
``__init_subclass__`` (a registry of error classes by name), made ``with_note`` raise its own error in place of the
user's, from inside the handler that was noting it; an error class declaring ``__slots__ = ()`` lost its note (the
subclass's layout differed, ``TypeError``). The user's error is now always the one returned, its notes kept."""

import lightning_causal._compat as compat


class _Registered(Exception):
    names: set[str] = set()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__name__ in _Registered.names:
            raise ValueError(f"an error class named {cls.__name__} exists")
        _Registered.names.add(cls.__name__)


class _Coded(_Registered):
    def __str__(self):
        return "code 7"


class _BadText(Exception):
    def __str__(self):
        raise RuntimeError("no text")


class _Slotted(Exception):
    __slots__ = ()

    def __str__(self):
        return "slotted"


def test_noting_never_raises_in_place_of_the_users_error(monkeypatch):
    monkeypatch.setattr(compat, "NOTES", False)
    coded = _Coded()
    assert compat.with_note(coded, "a note") is coded and type(coded) is _Coded and str(coded) == "code 7"
    bad = _BadText("x")
    assert compat.with_note(bad, "a note") is bad and bad.args == ("x",) and type(bad) is _BadText
    assert getattr(coded, compat._NOTES) == ["a note"] == getattr(bad, compat._NOTES)  # kept, not shown
    slotted = compat.with_note(_Slotted(), "a note")
    assert str(slotted) == "slotted\na note" and isinstance(slotted, _Slotted)
