"""FairnessAudit and the group metrics on tabular probes a new user meets: a rare class (a group
without positives), regression labels, one-hot columns, a binary attribute coded otherwise."""


import pytest
import torch
from torch import nn

from lightning_causal.audits.base import Probe
from lightning_causal.audits.fairness import FairnessAudit
from lightning_causal.causal.scm.attribute_flip import AttributeFlip
from lightning_causal.causal.scm.fairness import equalized_odds_difference


def _rare_class_probe():
    """Group 0 (a = 0) holds the only positive labels; group 1 has none, so its TPR is undefined."""
    a = torch.tensor([0.0] * 6 + [1.0] * 6)
    y = torch.tensor([1, 1, 0, 0, 0, 0] + [0] * 6)
    preds = torch.tensor([1, 0, 1, 0, 0, 0] + [1, 1, 1, 0, 0, 0])  # FPR: 1/4 in group 0, 3/6 in group 1
    return a, y, preds


@pytest.mark.parametrize("swap", [False, True])
def test_equalized_odds_ignores_the_undefined_spread_in_either_order(swap):
    a, y, preds = _rare_class_probe()
    if swap:  # the same data with classes swapped: now the FPR spread is the undefined one
        y, preds = 1 - y, 1 - preds
    # by hand: the defined spread is |1/4 - 3/6| = 0.25 (FPR; TPR after the swap)
    assert equalized_odds_difference(preds, y, a) == pytest.approx(0.25)


def test_audit_equalized_odds_with_a_group_without_positives():
    a, y, preds = _rare_class_probe()
    x = torch.stack([a, preds.float()], 1)
    model = nn.Linear(2, 2)  # predicts class 1 exactly where column 1 is 1
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, -5.0], [0.0, 5.0]]))
        model.bias.copy_(torch.tensor([2.5, -2.5]))
    r = FairnessAudit(AttributeFlip(0)).run(model, Probe(x, y))
    assert "tpr/group_1" not in r.scalars  # undefined: no positives in group 1
    assert r.scalars["equalized_odds_difference"] == pytest.approx(0.25)


def _regression_probe():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 2, (40,), generator=g).float()
    x = torch.stack([a, torch.randn(40, generator=g)], 1)
    model = nn.Linear(2, 1)  # y = 10 + 3 a + x1: flipping a moves the output by 3
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[3.0, 1.0]]))
        model.bias.fill_(10.0)
    return model, x, (model(x)[:, 0] + 0.1 * torch.randn(40, generator=g)).detach()


def test_regression_labels_warn_and_leave_out_the_label_metrics():
    model, x, y = _regression_probe()
    with pytest.warns(UserWarning, match=r"labels are a regression target such as"):
        r = FairnessAudit(AttributeFlip(0), compare="probability").run(model, Probe(x, y))
    assert r.scalars["cf_gap"] < 1e-3  # sigmoid(10 + ...) is saturated: why the user is warned
    assert "equalized_odds_difference" not in r.scalars and "accuracy/group_0" not in r.scalars
    assert "demographic_parity_difference" in r.scalars  # decisions only, no labels


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_float_class_labels_are_not_taken_for_a_regression(recwarn, smoothing):
    model, x, _ = _regression_probe()
    hard = (x[:, 1] > 0).float()  # BCE-style 0./1. targets, or smoothed ones (0.05 / 0.95)
    r = FairnessAudit(AttributeFlip(0)).run(model, Probe(x, hard * (1 - smoothing) + smoothing / 2))
    assert not [w for w in recwarn if "regression" in str(w.message)]
    ref = FairnessAudit(AttributeFlip(0)).run(model, Probe(x, hard.long()))
    assert r.scalars["equalized_odds_difference"] == ref.scalars["equalized_odds_difference"]


def test_one_hot_warning_names_only_the_block_of_the_flipped_column():
    g = torch.Generator().manual_seed(0)
    race = torch.randint(0, 3, (32,), generator=g)
    x = torch.cat([torch.nn.functional.one_hot(race, 3).float(),  # columns 0-2: one categorical feature
                   torch.zeros(32, 1),                             # column 3: a category of another feature absent here
                   torch.randn(32, 1, generator=g)], 1)
    with pytest.warns(UserWarning, match=r"one-hot encoded with columns \[1, 2\] "):
        FairnessAudit(AttributeFlip(0)).run(nn.Linear(5, 2), Probe(x))


def test_a_standardised_binary_column_is_refused_with_the_way_out():
    x = torch.tensor([[-1.46, 0.3], [0.69, 0.1], [0.69, -0.2]])  # sex 0/1 after standardisation
    with pytest.raises(ValueError, match=r"pass its two codes as `values=`"):
        FairnessAudit(AttributeFlip(0)).run(nn.Linear(2, 2), Probe(x))
    r = FairnessAudit(AttributeFlip(0, values=(-1.46, 0.69))).run(nn.Linear(2, 2), Probe(x))
    assert r.scalars["cf_changed"] == 1.0


def test_a_column_name_without_columns_names_the_missing_argument():
    with pytest.raises(ValueError, match=r"Expected argument `columns` .* with the column name 'sex'"):
        AttributeFlip("sex")


def test_regression_labels_warn_without_group_metrics_too():
    model, x, y = _regression_probe()
    with pytest.warns(UserWarning, match=r"regression target"):  # a callable without `sensitive`: no groups
        r = FairnessAudit(lambda x: torch.cat([1 - x[:, :1], x[:, 1:]], 1), compare="probability").run(model, Probe(x, y))
    assert r.scalars["cf_gap"] < 1e-3 and "demographic_parity_difference" not in r.scalars
