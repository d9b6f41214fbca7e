"""Review of 11f33075: ``title_lines`` with a width below 1 and a word longer than it never returned (its loop cut 0
characters off the word at each turn, appending empty lines); ``textwrap.wrap``, which it replaced, raised. The width
is checked first: a ValueError naming it."""
import signal

import pytest

from lightning_causal.reporting.figure_style import title_lines


def _stopped(signum, frame):
    raise TimeoutError("title_lines did not return")


@pytest.mark.parametrize("width", [0, -3])
def test_a_width_below_one_is_refused_not_looped_on(width):
    previous = signal.signal(signal.SIGALRM, _stopped)
    signal.alarm(1)  # the loop it ran before grows a list: stopped at once
    try:
        with pytest.raises(ValueError, match=rf"`width`.*{width}"):
            title_lines("importance/encoder.layers.1.self_attn", width)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert title_lines("a.b", 1) == ["a", ".", "b"] and title_lines("a.b", 2) == ["a.", "b"]  # small widths still wrap
