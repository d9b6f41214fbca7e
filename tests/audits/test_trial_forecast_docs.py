"""docs/your_model.md, "Forecasting models": the snippet runs as printed (without logs) and its
audits find the planted (lag, feature) groups of every horizon in the order of their weights."""

from __future__ import annotations

import re
from pathlib import Path

import lightning.pytorch as pl

PAGE = Path(__file__).resolve().parents[2] / "docs" / "your_model.md"


def test_the_forecasting_snippet_finds_the_planted_lags(monkeypatch, tmp_path) -> None:
    code = re.search(r"<!-- forecast -->\s*```python\n(.*?)```", PAGE.read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)  # the Trainer's logs
    init = pl.Trainer.__init__
    monkeypatch.setattr(pl.Trainer, "__init__", lambda self, *a, **k: init(self, *a, **{**k, "enable_model_summary": False, "logger": False}))
    ns: dict = {}
    exec(compile(code, "<your_model.md forecast>", "exec"), ns)  # noqa: S102 - the docs' own example
    results = ns["callback"].last_results
    tops = [[row["feature"] for row in results[f"lags_h{h}"].tables["top_groups"][:2]] for h in range(3)]
    assert tops == [["lag3_f0", "lag1_f2"], ["lag3_f0", "lag1_f2"], ["lag1_f2", "lag3_f0"]]
    assert results["lags_h0"].meta["targets"] == [0] * 128 and results["lags_h2"].meta["regression"] is True
    sobol = {row["feature"]: row["S"] for row in results["sobol"].tables["indices"]}
    assert abs(sobol["f0"] - 0.9) < 0.15 and abs(sobol["f2"] - 0.1) < 0.15  # 1.5^2 / (1.5^2 + 0.5^2), unit variances
