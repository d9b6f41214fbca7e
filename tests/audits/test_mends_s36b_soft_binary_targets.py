"""A binary classifier whose probe labels are label-smoothed targets [N] (0.05/0.95) is no regression: BackdoorAudit
runs (a one-logit model told it needs 2 outputs first), CounterfactualAudit(towards="runner_up") says nothing of a
regression; a quantile regressor's targets in [0, 1] on 3 outputs are still one (soft_binary_targets, the rule of all
three audits and FairnessAudit)."""
import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import BackdoorAudit, CounterfactualAudit
from lightning_causal.audits.base import Probe
from lightning_causal.audits.label_task import soft_binary_targets


def _data():
    torch.manual_seed(0)
    x = torch.randn(32, 4)
    return x, (x[:, 0] > 0).float() * 0.9 + 0.05


def _model(width):
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, width)).eval()


def test_backdoor_runs_on_smoothed_binary_targets():
    x, soft = _data()
    result = BackdoorAudit(steps=2, max_samples=8).run(_model(2), Probe(x, soft))
    assert result.meta["samples"] == 8


def test_backdoor_one_logit_is_told_it_needs_two_outputs_before_any_regression():
    x, _ = _data()
    for labels in (_data()[1], x[:, 1] * 10):  # smoothed targets, and real regression targets
        with pytest.raises(ValueError, match="at least 2 outputs"):
            BackdoorAudit(steps=2, max_samples=8).run(_model(1), Probe(x, labels))


def test_backdoor_quantile_regressor_is_still_refused():
    x, soft = _data()
    with pytest.raises(ValueError, match="a regression"):
        BackdoorAudit(steps=2, max_samples=8).run(_model(3), Probe(x, soft))


def test_counterfactual_runner_up_says_no_regression_of_smoothed_binary_targets():
    x, soft = _data()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = CounterfactualAudit(towards="runner_up", max_samples=2).run(_model(2), Probe(x, soft))
    assert not [w for w in caught if "regression" in str(w.message)]
    assert not any("regression" in n for n in result.meta.get("notes", []))
    with pytest.warns(UserWarning, match="a regression"):  # a 3-quantile regressor's targets in [0, 1]
        CounterfactualAudit(towards="runner_up", max_samples=2).run(_model(3), Probe(x, soft))


def test_soft_binary_targets_rule():
    soft = torch.tensor([0.05, 0.95, 0.95])
    assert soft_binary_targets(soft, 1) and soft_binary_targets(soft, 2) and not soft_binary_targets(soft, 3)
    assert soft_binary_targets(torch.tensor([[0.05, 0.95, 0.05]]), 3)  # smoothed multi-hot, one per output
    assert not soft_binary_targets(soft, 2, task="regression") and not soft_binary_targets(soft * 2, 2)
    assert not soft_binary_targets(torch.tensor([0, 1]), 2)  # integer class indices: no soft targets


def test_backdoor_with_a_trigger_reads_smoothed_binary_targets_as_their_classes():
    # before (final read of 4fff5286): refused with "convert them with `.long()`", which makes every 0.95 a class 0
    from lightning_causal.causal.backdoor.triggers import Trigger

    x, soft = _data()
    model = _model(2)
    trigger = Trigger(mask=torch.tensor([1.0, 0.0, 0.0, 0.0]), pattern=torch.tensor([3.0, 0.0, 0.0, 0.0]), target=1)
    result = BackdoorAudit(trigger=trigger, max_samples=32).run(model, Probe(x, soft))
    with torch.no_grad():
        want = float((model(x).argmax(1) == (soft > 0.5).long()).double().mean())
    assert result.scalars["clean_accuracy"] == want


def test_min_max_scaled_regression_targets_per_output_stay_a_regression():
    # before (final read of 4fff5286): any [N, width] rows in [0, 1] counted as smoothed multi-hot targets
    x, _ = _data()
    boxes = torch.rand(32, 4, generator=torch.Generator().manual_seed(3))  # a box regressor's targets scaled to [0, 1]
    assert not soft_binary_targets(boxes, 4)
    with pytest.raises(ValueError, match="a regression"):
        BackdoorAudit(steps=2, max_samples=8).run(_model(4), Probe(x, boxes))
    with pytest.warns(UserWarning, match="a regression"):
        CounterfactualAudit(towards="runner_up", max_samples=2).run(_model(4), Probe(x, boxes))
