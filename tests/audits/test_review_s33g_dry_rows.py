"""Review of b1428412: dry_rows, which every audit's dry run takes, keeps the rows it took before except where the
probe's float labels hold a value beyond [0, 1] that its first two rows do not; the dry run stays 2 samples."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import FairnessAudit
from lightning_causal.audits import Probe
from lightning_causal.audits.base import dry_rows
from lightning_causal.causal import AttributeFlip

N = 6
_UNCHANGED = {  # labels whose dry run b1428412 leaves on the first two samples (or the first multi-hot row)
    "integer classes": torch.tensor([0, 1, 5, 2, 7, 1]),
    "binary floats": torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0, 0.0]),
    "probabilities": torch.tensor([0.2, 0.9, 0.4, 0.1, 0.99, 0.0]),
    "one-hot": torch.eye(3)[torch.tensor([0, 1, 2, 0, 1, 2])],
    "soft rows": torch.softmax(torch.randn(N, 3, generator=torch.Generator().manual_seed(0)), 1),
    "smoothed multi-hot": torch.tensor([[0.95, 0.05]] * 3 + [[0.95, 0.95]] * 3),
    "bool": torch.tensor([True, False, True, True, False, False]),
    "none": None,
    "row 1 beyond": torch.tensor([0.3, 2.5, 0.1, 7.0, 0.2, 0.4]),
    "NaN, no value beyond": torch.tensor([0.3, 0.6, float("nan"), 0.5, 0.2, 1.0]),
}


@pytest.mark.parametrize("name", list(_UNCHANGED))
def test_labels_without_a_later_value_beyond_0_1_keep_the_first_two_rows(name: str) -> None:
    assert dry_rows(Probe(torch.zeros(N, 2), _UNCHANGED[name])) == slice(0, 2)


def test_multi_hot_keeps_its_row_and_short_probes_their_rows() -> None:
    multi = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 1.0]])
    assert dry_rows(Probe(torch.zeros(4, 2), multi)).tolist() == [0, 3]
    for n in (1, 2):  # a probe of 1 or 2 samples: all of them, whatever the labels
        assert dry_rows(Probe(torch.zeros(n, 2), torch.tensor([0.5, 3.0])[:n])) == slice(0, 2)


@pytest.mark.parametrize("labels", [torch.tensor([0.3, 0.6, 0.2, 4.0, 0.1, 2.0]),
                                    torch.tensor([0.0, 1.0, 0.0, 3.0, 1.0, 2.0]),  # counts of a one-output regression
                                    torch.tensor([[0.3, 1.0], [0.2, 0.0], [0.5, 1.0], [4.0, 0.0], [1.5, 1.0], [0.1, 1.0]])])
def test_the_dry_run_reads_labels_as_the_full_run_and_stays_two_samples(labels: torch.Tensor) -> None:
    x = torch.randn(N, 3, generator=torch.Generator().manual_seed(1))
    x[:, 2] = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0, 0.0])
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).eval()
    probe, audit = Probe(x, labels), FairnessAudit(AttributeFlip(2))
    assert len(probe.subset(dry_rows(probe))) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dry = audit.dry_run(model, probe)
        full = audit.run(model, probe)
    label_tags = {"accuracy/group_0", "tpr/group_1", "equalized_odds_difference"}
    assert not label_tags & set(full.scalars)  # the probe's labels: a regression target, its label metrics left out
    assert not label_tags & set(dry.scalars)  # the dry run's too (before: read as classes on rows 0 and 1)
