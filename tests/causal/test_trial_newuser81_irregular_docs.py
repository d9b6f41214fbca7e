"""docs/your_model.md, "Irregularly sampled series": the snippet runs as printed and its answers match the data's
ground truth: the class is decided by channel 0 inside a time window, channel 2's observation rate depends on the
class (informative missingness), and the unobserved and padded entries of the observation mask (``attention_mask``
of the values' shape) are never set."""

from __future__ import annotations

import re
from pathlib import Path

import torch

PAGE = Path(__file__).resolve().parents[2] / "docs" / "your_model.md"


def test_the_irregular_series_snippet_finds_the_window_and_the_missingness() -> None:
    code = re.search(r"<!-- irregular -->\s*```python\n(.*?)```", PAGE.read_text(), re.S).group(1)
    ns: dict = {}
    exec(compile(code, "<your_model.md irregular>", "exec"), ns)  # noqa: S102 - the docs' own example
    effects, mask, window = ns["effects"], ns["mask"][:64] > 0, ns["window"][:64]
    outside = effects[..., 0][~window & mask[..., 0]].abs().mean()
    channel1 = effects[..., 1][mask[..., 1]].abs().mean()
    assert ns["in_window"] > 1.3 * outside and ns["in_window"] > 2 * channel1
    missingness = ns["missingness"].abs().mean(0)
    assert int(missingness.argmax()) == 2 and missingness[2] > 1.5 * missingness[0]
    by_window = ns["by_window"].abs().mean(0)
    assert int(by_window.argmax()) == 3 and by_window[3] > 2 * torch.cat([by_window[:3], by_window[4:]]).max()
