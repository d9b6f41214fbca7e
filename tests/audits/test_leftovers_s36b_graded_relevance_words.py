"""A listwise ranker's graded relevance labels ``[N, L]`` (grades 0-3 as floats, one per item of the list) beside its
scores ``[N, L]``, audited with ``target=None``, were warned "(a regression, e.g. a forecast of 8 horizons?)": a
forecaster's words for a ranker. The warning keeps its rule and names both readings of one value per position: a
forecast's horizons or a ranker's items."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from lightning_causal.audits.task_warnings import warn_predicted_class_of_regression


def _said(labels: torch.Tensor) -> str:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_predicted_class_of_regression("InputEffectAudit 'ie'", labels, torch.zeros(len(labels), labels.shape[-1]),
                                           model=nn.Linear(5, labels.shape[-1]))
    assert len(caught) == 1
    return str(caught[0].message)


def test_graded_relevance_of_a_list_is_worded_as_items_as_well_as_horizons():
    grades = torch.randint(0, 4, (16, 8), generator=torch.Generator().manual_seed(0)).float()
    said = _said(grades)
    assert "real-valued [N, 8] (a regression of 8 values per sample" in said
    assert "a forecast's 8 horizons" in said and "relevance grades of 8 items" in said
    assert "Pass `target=k` to explain output k" in said  # the way out is the same: one audit per position
    one = _said(torch.rand(16, generator=torch.Generator().manual_seed(1)))  # one real target per sample
    assert "real-valued [N] (a regression?)" in one and "items" not in one and "horizons" not in one
