"""docs/your_model.md, "Speech recognition: CTC models": the recipe runs as printed (without logs); the audits of the
transcript's CTC log-likelihood find the tokens' bands and frames, not the hum's band nor the padding."""

from __future__ import annotations

import re
from pathlib import Path

import lightning.pytorch as pl
import torch

PAGE = Path(__file__).resolve().parents[2] / "docs" / "your_model.md"


def test_the_ctc_recipe_finds_the_tokens_not_the_hum_nor_the_padding(monkeypatch, tmp_path) -> None:
    code = re.search(r"<!-- ctc -->\s*```python\n(.*?)```", PAGE.read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)  # the Trainer's logs
    init = pl.Trainer.__init__
    monkeypatch.setattr(pl.Trainer, "__init__", lambda self, *a, **k: init(self, *a, **{**k, "enable_model_summary": False, "logger": False}))
    ns: dict = {}
    exec(compile(code, "<your_model.md ctc>", "exec"), ns)  # noqa: S102 - the docs' own example
    results = ns["callback"].last_results
    bands = {row["group"]: row["mean_abs_effect"] for row in results["bands"].tables["top_groups"]}
    assert all(3 <= b <= 14 for b in bands)  # the tokens' bands 3k..3k+2 of k = 1..4
    hum = float(results["bands"].vectors["mean_abs_effect"][0])
    assert hum < 0.1 * max(bands.values())  # the hum, set to its own level, is no cause
    effect = torch.as_tensor(results["frames"].maps["effect"]).abs().amax(-1)  # [16, 40]: each frame's effect
    lengths, onsets, count = ns["lengths"][512:528], ns["onsets"][512:528], ns["count"][512:528]
    top = effect.argmax(1)
    in_token = ((top[:, None] >= onsets) & (top[:, None] < onsets + 3) & (torch.arange(4) < count[:, None])).any(1)
    assert bool(in_token.all()), (top, onsets, count)
    padded = torch.arange(40) >= lengths[:, None]
    assert bool((effect[padded] == 0).all()) and bool((effect[~padded] != 0).any())
