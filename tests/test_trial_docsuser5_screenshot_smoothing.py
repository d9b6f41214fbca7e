"""The screenshots of scalar charts show the audits' values, not TensorBoard's smoothed line.

Found by a docs trial (docsuser5: docs/recipes.md's repair recipe run as printed, its TensorBoard captured as
scripts/screenshots.py does): docs/img/tb_repair_scalars.png, captioned 'The counterfactual fairness gap during
repair, one point per audit', drew TensorBoard's default smoothing (0.6), a line whose values are no audit's (the
last audit's gap 0.0010 read 0.0013 on the line; the flip rate, 0 at four of six audits, never reached 0).
TensorBoard's Time Series dashboard takes ``smoothing=`` from its URL."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parents[1]


def _views():
    spec = importlib.util.spec_from_file_location("screenshots", ROOT / "scripts" / "screenshots.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.VIEWS


def test_every_time_series_view_draws_scalars_unsmoothed():
    series = [(name, suffix) for name, _, suffix, _ in _views() if suffix.endswith("#timeseries")]
    assert any(name == "tb_repair_scalars" for name, _ in series)
    for name, suffix in series:
        query = parse_qs(urlsplit(suffix.split("#")[0]).query)
        assert query.get("smoothing") == ["0"], f"{name}: the scalar charts would be smoothed ({suffix})"
