"""A survival model's batches (x, time, event): the labels a user gives the audits, and how the dry run reads them.

Trial newuser69: a DeepSurv model (one log-risk per patient) audited with its (time, event) pairs stacked as labels
``[N, 2]`` was refused by FairnessAudit's dry run ('needs one class label per probe sample') where the probe's first
two times were below 1: the dry run judged the labels on those 2 rows (zeros, ones and fractions: class-like), the
full run on the probe (times beyond 1: a regression target, its label metrics left out with a warning).
"""


import pytest
import torch
from torch import nn

from lightning_causal import FairnessAudit
from lightning_causal.audits import Probe
from lightning_causal.audits.base import dry_rows
from lightning_causal.batches import default_unpack_batch
from lightning_causal.causal import AttributeFlip


def _cohort(n: int = 32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=g)
    x[:, 2] = (torch.arange(n) % 2).float()  # the protected column, 0/1
    time = torch.rand(n, generator=g) * 5 + 0.1
    time[:2] = torch.tensor([0.3, 0.2])  # the first two patients' times below 1
    event = (torch.arange(n) % 3 != 0).float()
    return x, time, event


def _log_risk() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).eval()


def test_the_dry_run_reads_time_event_labels_as_the_full_run_does() -> None:
    x, time, event = _cohort()
    labels = torch.stack([time, event], 1)  # [N, 2]: rows 0 and 1 hold values in [0, 1] only
    probe = Probe(x, labels)
    rows = dry_rows(probe)
    assert bool(((labels[rows] < 0) | (labels[rows] > 1)).any())  # a row beyond [0, 1], as the probe holds
    audit = FairnessAudit(AttributeFlip(2), feature_names=["age", "bp", "sex"], compare="probability")
    with pytest.warns(UserWarning, match="regression target"):
        dry = audit.dry_run(_log_risk(), probe)  # refused before: 'needs one class label per probe sample'
    with pytest.warns(UserWarning, match="regression target"):
        full = audit.run(_log_risk(), probe)
    assert "tpr/sex_eq_0" not in dry.scalars and "tpr/sex_eq_0" not in full.scalars


def test_which_rows_the_dry_run_takes() -> None:
    x = torch.zeros(4, 3)
    assert dry_rows(Probe(x, torch.tensor([0.0, 1.0, 2.0, 1.0]))).tolist() == [0, 2]  # float labels: a class 2 seen too
    assert dry_rows(Probe(x, torch.tensor([0, 1, 5, 1]))) == slice(0, 2)  # integer ones
    assert dry_rows(Probe(x, torch.tensor([0.2, 0.9, 0.4, 0.1]))) == slice(0, 2)  # soft labels in [0, 1]
    assert dry_rows(Probe(x, torch.tensor([2.5, 0.9, 0.4, 0.1]))) == slice(0, 2)  # row 0 holds the regression value


def test_a_time_event_batch_is_answered_with_the_survival_way() -> None:
    x, time, event = _cohort()
    with pytest.raises(ValueError, match=r"\(x, time, event\) of a survival model.*\(batch\[0\], None, None\)"):
        default_unpack_batch((x, time, event))
    with pytest.raises(ValueError, match=r"survival"):
        default_unpack_batch((x, time, event.bool()))
    with pytest.raises(ValueError) as err:  # sample weights of any value: no survival batch
        default_unpack_batch((x, torch.randint(0, 3, (32,)), torch.rand(32) * 3))
    assert "survival" not in str(err.value)


def test_a_log_risk_counterfactual_is_told_the_threshold_way_and_that_way_works() -> None:
    from lightning_causal.audits import CounterfactualAudit

    x, _, _ = _cohort()
    model = _log_risk()
    with pytest.raises(ValueError, match=r"threshold t.*torch\.stack\(\[out - t, t - out\], 1\)"):
        CounterfactualAudit(max_samples=4, towards="runner_up").run(model, Probe(x, None))
    with torch.no_grad():
        risk = model(x)[:, 0]
    t = risk.median()
    two = lambda out: torch.stack([out[:, 0] - t, t - out[:, 0]], 1)  # noqa: E731 - the message's way, of [N, 1]
    high = x[risk > t][:4]
    mask = torch.tensor([1.0, 1.0, 0.0])  # the protected column stays
    result = CounterfactualAudit(max_samples=4, mask=mask, output=two, towards="runner_up").run(model, Probe(high, None))
    rows = [r for r in result.tables["counterfactuals"] if r["success"]]
    assert rows
    for row in rows:  # the point rebuilt from the report lies below the median, its protected column unchanged
        point = high[row["index"]].clone()
        point[row["changed_elements"]] = torch.tensor(row["counterfactual_values"])
        with torch.no_grad():
            assert float(model(point[None])[0, 0]) < float(t)
        assert 2 not in row["changed_elements"]
