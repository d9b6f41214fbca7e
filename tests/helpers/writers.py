"""A stand-in for TensorBoard's ``SummaryWriter`` in renderer tests: it keeps the custom-scalar layouts and the text
tags it is given and accepts every other call."""

from __future__ import annotations

from typing import Any


class RecordingWriter:
    """Keeps ``add_custom_scalars`` layouts in ``layouts`` and ``add_text`` ``(tag, step)`` in ``texts``."""

    def __init__(self) -> None:
        self.layouts: list[dict] = []
        self.texts: list[tuple[str, int]] = []

    def add_custom_scalars(self, layout: dict) -> None:
        self.layouts.append(layout)

    def add_text(self, tag: str, text: str, step: int) -> None:
        self.texts.append((tag, step))

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None
