"""leftovers_s30a: CounterfactualAudit on samples holding a missing value (NaN) that the model reads (it imputes inside).

The search's cost of a change, ``x' - x``, is NaN at a missing value, so such a sample never gets a counterfactual; the
table showed it as not found with ``changes`` 'c: +nan' and nothing said why. A note and a ``ProbeContentsWarning``
now name those samples (by probe index), how many, and the columns that hold NaN; the row's changes are empty.
"""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import CounterfactualAudit, Probe
from lightning_causal.causal.engine.probe_warnings import ProbeContentsWarning
from lightning_causal.causal.structure.counterfactuals import CounterfactualSettings


class _Imputing(nn.Module):
    """Reads a missing value (NaN) as 0: the probe's finiteness check accepts its NaN samples (finite outputs)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.lin = nn.Linear(features, 2)
        with torch.no_grad():  # class 1 where x_0 + x_1 + x_2 > 0
            self.lin.weight.copy_(torch.tensor([[0.0] * features, [1.0] * features]))
            self.lin.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(torch.nan_to_num(x).flatten(1))


def _probe(x: torch.Tensor) -> Probe:
    """Every sample labelled as the class it is not predicted as: all misclassified."""
    with torch.no_grad():
        return Probe(x, 1 - _Imputing(x[0].numel())(x).argmax(1))


def test_samples_with_missing_values_are_named_with_their_columns():
    x = torch.tensor([[1.0, 1.0, 1.0], [1.0, float("nan"), 1.0], [-1.0, -1.0, -1.0], [float("nan"), 2.0, float("nan")]])
    audit = CounterfactualAudit(max_samples=4, settings=CounterfactualSettings(steps=30), feature_names=["a", "b", "c"])
    with pytest.warns(ProbeContentsWarning, match=r"samples \[1, 3\] \(2 of the 4 explained\) have no counterfactual: they "
                      r"hold NaN or infinity \(missing values\) in columns \['a', 'b', 'c'\]"):
        result = audit.run(_Imputing(3), _probe(x))
    rows = {row["index"]: row for row in result.tables["counterfactuals"]}
    assert [rows[i]["success"] for i in range(4)] == [True, False, True, False]
    assert rows[1]["changes"] == rows[3]["changes"] == ""  # before: 'b: +nan'
    assert any(note.startswith("samples [1, 3] (2 of the 4 explained)") for note in result.meta["notes"])


def test_images_name_how_many_elements_and_finite_samples_say_nothing():
    x = torch.ones(3, 1, 2, 2)
    x[2, 0, 1, 1] = float("nan")
    with pytest.warns(ProbeContentsWarning, match=r"samples \[2\] \(1 of the 3 explained\) .* in 1 of the 4 elements of each,"):
        CounterfactualAudit(settings=CounterfactualSettings(steps=5)).run(_Imputing(4), _probe(x))
    two = x.clone()
    two[1, 0, 0, 0] = float("nan")  # two samples of one missing pixel each, at other places: 1 of 4 each (before: 2 of 4)
    with pytest.warns(ProbeContentsWarning, match=r"samples \[1, 2\] \(2 of the 3 explained\) .* in 1 of the 4 elements of each,"):
        CounterfactualAudit(settings=CounterfactualSettings(steps=5)).run(_Imputing(4), _probe(two))
    two[1, 0, 1, 0] = float("nan")
    with pytest.warns(ProbeContentsWarning, match=r"samples \[1, 2\] .* in 1 to 2 of the 4 elements of each,"):
        CounterfactualAudit(settings=CounterfactualSettings(steps=5)).run(_Imputing(4), _probe(two))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ProbeContentsWarning)
        result = CounterfactualAudit(settings=CounterfactualSettings(steps=5)).run(_Imputing(4), _probe(x[:2]))
    assert "notes" not in result.meta
