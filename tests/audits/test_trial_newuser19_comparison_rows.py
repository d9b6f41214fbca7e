"""CaptumBaseline's comparison table read as data (trial newuser19: the results in pandas / a CI gate).

The causal row has no rank agreement with itself; it held the string ``"-"`` there, so the table's
``spearman``/``kendall``/``topk`` columns mixed floats and strings: ``pd.DataFrame(rows)["spearman"].mean()``
raised a TypeError and ``json.loads`` in a CI script got a string where every other row holds a number.
The cell is ``None`` now (JSON ``null``, NaN in pandas); the text card still prints ``-``.
"""

import json

import torch
from torch import nn

from lightning_causal.audits import CaptumBaseline, Probe
from lightning_causal.reporting.summary import markdown_summary


def _result():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)).eval()
    return CaptumBaseline(("Saliency",), feature_names=["a", "b", "c", "d"]).run(model, Probe(torch.randn(16, 4)))


def test_causal_row_has_no_placeholder_strings_in_numeric_columns():
    r = _result()
    rows = json.loads(json.dumps(r.to_dict()))["tables"]["comparison"]
    assert [row["method"] for row in rows] == ["Saliency", "causal"]
    causal = rows[-1]
    assert causal["spearman"] is None and causal["kendall"] is None and causal["topk"] is None
    for row in rows:  # every other cell a number
        assert all(isinstance(v, float) for k, v in row.items() if k != "method" and v is not None), row
    assert rows[0]["spearman"] == r.scalars["compare/Saliency/spearman"]


def test_comparison_table_becomes_a_numeric_data_frame_and_the_card_still_shows_a_dash():
    pd = __import__("pytest").importorskip("pandas")
    r = _result()
    df = pd.DataFrame(r.tables["comparison"]).set_index("method")
    assert df["spearman"].dtype.kind == "f"
    assert df["spearman"].mean() == r.scalars["compare/Saliency/spearman"]  # the causal row's NaN skipped
    assert "| causal | - | - | - |" in markdown_summary(0, [r])
