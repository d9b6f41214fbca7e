"""FairnessAudit with a callable counterfactual and its sensitive column given by name."""

import pytest
import torch
from torch import nn

from lightning_causal.audits import FairnessAudit
from lightning_causal.audits.base import Probe


def _flip(rows):
    rows = rows.clone()
    rows[:, 1] = 1 - rows[:, 1]
    return rows


def test_a_callable_counterfactual_takes_the_sensitive_column_by_name():
    """FairnessAudit(callable, sensitive="b", feature_names=[...]) was refused ('Expected argument
    `sensitive` to be None or a column index (int) for a callable counterfactual'), although the
    names say which column it is."""
    torch.manual_seed(0)
    x = torch.rand(12, 3)
    x[:, 1] = torch.tensor([0.0, 1.0] * 6)
    labels = torch.tensor([0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 0])
    model = nn.Linear(3, 2)
    names = ["a", "b", "c"]
    by_name = FairnessAudit(_flip, sensitive="b", feature_names=names).run(model, Probe(x, labels))
    by_index = FairnessAudit(_flip, sensitive=1, feature_names=names).run(model, Probe(x, labels))
    assert by_name.scalars == by_index.scalars and "positive_rate/b_eq_1" in by_name.scalars
    assert by_name.meta["sensitive"] == "b"
    with pytest.raises(ValueError, match=r"`sensitive` to be one of `feature_names` \['a', 'b', 'c'\] or a column index but got 'z'"):
        FairnessAudit(_flip, sensitive="z", feature_names=names)
    with pytest.raises(ValueError, match=r"a column name needs `feature_names=`"):
        FairnessAudit(_flip, sensitive="b")


def test_a_target_out_of_range_on_a_one_output_model_names_its_two_classes():
    """A one-output model's out-of-range target was reported as "(the model returns 2 outputs)", then as "2 classes: two
    outputs, or one output ..." (read from the sigmoid's two columns); the model's own output says which now."""
    x = torch.rand(8, 3)
    x[:, 1] = torch.tensor([0.0, 1.0] * 4)
    model = nn.Linear(3, 1)
    with pytest.raises(ValueError, match=r"`target` to be in \[0, 1\] but got \[3\] \(the model has one output: the classes 0 and 1 of its sigmoid\)"):
        FairnessAudit(_flip, sensitive=1, target=3).run(model, Probe(x))
