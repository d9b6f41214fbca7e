"""CaptumBaseline on a tabular probe with a one-hot block: its causal effects, ablation methods and curves set
groups to `baseline` as InputEffectAudit does, and were silent where InputEffectAudit warns (a block split over
groups, or a block set to 0: rows with no category). It now gives the same warning; grouped with a one-hot
baseline it is silent."""

import warnings

import torch
from torch import nn

from lightning_causal import CaptumBaseline
from lightning_causal.audits.base import Probe


def _probe() -> Probe:
    g = torch.Generator().manual_seed(0)
    cat = torch.randint(0, 3, (32,), generator=g)
    x = torch.cat([torch.randn(32, 2, generator=g, dtype=torch.float64), nn.functional.one_hot(cat, 3).double()], 1)
    return Probe(x, torch.zeros(32, dtype=torch.long))


def _one_hot_messages(audit: CaptumBaseline) -> list[str]:
    torch.manual_seed(0)
    model = nn.Linear(5, 2).double()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit.run(model, _probe())
    return [str(w.message) for w in caught if "one-hot block" in str(w.message)]


def test_a_block_split_over_groups_warns_naming_it():
    messages = _one_hot_messages(CaptumBaseline(methods=["FeatureAblation"], target=1))
    assert len(messages) == 1 and messages[0].startswith("CaptumBaseline 'captum_baseline'") and "[2, 3, 4]" in messages[0]
    assert "on its own" in messages[0]


def test_a_grouped_block_with_a_one_hot_baseline_is_silent():
    baseline = torch.zeros(5, dtype=torch.float64)
    baseline[2] = 1.0
    audit = CaptumBaseline(methods=["FeatureAblation"], target=1, feature_mask=torch.tensor([[0, 1, 2, 2, 2]]), baseline=baseline)
    assert _one_hot_messages(audit) == []
