"""leftovers_s30c: CounterfactualAudit without ``feature_names`` named the columns holding NaN by number.

The note of samples holding a missing value said "columns [1, 3]" while the table's ``changes`` call the same columns
"x1", "x3"; both now take the table's names (``CounterfactualAudit._column``).
"""

import pytest
import torch

from lightning_causal.audits import CounterfactualAudit
from lightning_causal.causal.engine.probe_warnings import ProbeContentsWarning
from lightning_causal.causal.structure.counterfactuals import CounterfactualSettings
from tests.test_leftovers_s30a_counterfactual_missing import _Imputing, _probe


def test_the_missing_values_note_names_columns_as_the_table_does():
    nan = float("nan")
    x = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, nan, 1.0, 1.0], [-1.0, -1.0, -1.0, -1.0], [1.0, 2.0, 1.0, nan]])
    with pytest.warns(ProbeContentsWarning, match=r"samples \[1, 3\] \(2 of the 4 explained\) have no counterfactual: they "
                      r"hold NaN or infinity \(missing values\) in columns \['x1', 'x3'\],"):  # before: [1, 3]
        result = CounterfactualAudit(max_samples=4, settings=CounterfactualSettings(steps=30)).run(_Imputing(4), _probe(x))
    rows = {row["index"]: row for row in result.tables["counterfactuals"]}
    assert rows[0]["success"] and rows[0]["changes"].startswith("x")  # the table's names for the same columns
    assert any("in columns ['x1', 'x3']" in note for note in result.meta["notes"])
