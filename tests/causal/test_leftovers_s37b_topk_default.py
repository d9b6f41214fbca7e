"""``topk_overlap``'s default is the audits' ``ties="cut"``: a direct caller gets the number ``CaptumBaseline``'s
agreement reports, not an agreement made by breaking ties by group id; ``ties="first"`` keeps that rule; a row left
without a top k is NaN, which a mean over the rows leaves out, as the agreement does."""

import math

import pytest
import torch

from lightning_causal.audits.captum_metrics import agreement
from lightning_causal.baselines import topk_overlap


def test_default_takes_no_group_tied_across_the_kth_place():
    causal = torch.tensor([[0.0, 0.0, 0.0, 5.0, 0.0, 0.0, 2.0, 0.0]])  # two points of effect, the rest exactly 0
    other = torch.tensor([[0.0, 0.0, 0.0, 0.0, 9.0, 0.0, 0.0, 7.0]])  # two other points
    assert topk_overlap(causal, other, 4).item() == 0.0  # top 2 of each, nothing shared
    assert topk_overlap(causal, other, 4) == topk_overlap(causal, other, 4, ties="cut")
    assert topk_overlap(causal, other, 4, ties="first").item() == 0.5  # zeros 0 and 1 taken by both: agreement by id


class _Settings:
    absolute = True


class _Audit:
    settings = _Settings()


def test_the_function_gives_the_agreement_the_audit_reports():
    g = torch.Generator().manual_seed(0)
    a = torch.relu(torch.randn(16, 12, generator=g) - 0.8)  # most scores exactly 0, ties at the k-th place
    b = torch.relu(torch.randn(16, 12, generator=g) - 0.8)
    k = 4
    rows = topk_overlap(a, b, k, proper=True)
    reported = agreement(_Audit(), a, b, k)["topk"]
    assert rows.isnan().any() and not rows.isnan().all()  # some rows have no top k: left out of the mean
    assert reported == pytest.approx(float(torch.nanmean(rows)))


def test_a_row_of_ties_everywhere_is_nan_not_agreement():
    tied = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    assert math.isnan(topk_overlap(tied, torch.tensor([[4.0, 3.0, 2.0, 1.0]]), 1).item())
