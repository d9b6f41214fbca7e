"""The layer map's key notes (the layers left out, those no intervention moves) wrapped a module's path mid-word
(``model.encoder.la`` / ``yers.10...``); they now break it after a dot, an underscore, a slash or a hyphen, by the
rule titles follow (``figure_style.wrapped_at_separators``, which ``title_lines`` calls)."""

from __future__ import annotations

import pytest

from lightning_causal.reporting.figure_style import title_lines, wrapped_at_separators
from lightning_causal.reporting.layer_map_figures import _fitted, _left_out_note

PATH = "model.encoder.layers.10.self_attention.output_projection"
LINE = f"left out: {PATH} (returns a tuple)"


def _breaks_at_separators(text: str, lines: list[str]) -> bool:
    """Whether ``lines`` are ``text`` cut only at its spaces or after a separator."""
    at, rest = [], text
    for line in lines:
        assert rest.startswith(line)
        rest = rest[len(line):]
        at.append(rest.startswith(" ") or not rest or line[-1] in "._/-")
        rest = rest.lstrip(" ")
    return not rest and all(at)


@pytest.mark.parametrize("inches", [1.5, 2.0, 3.0])
def test_a_left_out_path_is_broken_after_a_separator(inches):
    lines = _fitted(LINE, inches, 40)
    assert len(lines) > 1 and _breaks_at_separators(LINE, lines)


def test_the_left_out_note_keeps_its_path_whole_at_its_width():
    unmoved = "no intervention moves: model.encoder.layers.11.mlp.fc2"
    lines = _left_out_note({"left_out": {PATH: "returns a tuple"}, "unmoved": ["model.encoder.layers.11.mlp.fc2"]}, 30)
    assert lines == wrapped_at_separators(LINE, 30) + wrapped_at_separators(unmoved, 30)
    assert _breaks_at_separators(LINE, wrapped_at_separators(LINE, 30))
    assert _breaks_at_separators(unmoved, wrapped_at_separators(unmoved, 30))


def test_titles_and_notes_share_one_rule():
    assert title_lines(f"importance/{PATH}", 30) == wrapped_at_separators(f"importance/{PATH}", 30)
