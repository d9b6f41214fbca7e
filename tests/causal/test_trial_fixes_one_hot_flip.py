"""counterfactual_fairness_gap warned of nothing when its flip changed one column of a one-hot block
alone (rows with two ones or none), while FairnessAudit and CounterfactualFairnessTerm did: the one
check (warn_one_hot_flip) now serves all three, each warning once, at the user's line."""

import warnings

import torch
from torch import nn

from lightning_causal.audits import FairnessAudit
from lightning_causal.audits.base import Probe
from lightning_causal.causal.scm.attribute_flip import AttributeFlip
from lightning_causal.causal.scm.fairness import counterfactual_fairness_gap
from lightning_causal.repair.fairness import CounterfactualFairnessTerm


def _rows(n: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    sex = torch.randint(0, 2, (n,), generator=g).float()
    return torch.stack([sex, 1 - sex, torch.randn(n, generator=g)], 1)  # columns 0, 1: one-hot sex


def _warned(fn) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        fn()
    return [m for m in w if "one-hot encoded" in str(m.message)]


def test_the_gap_warns_of_a_flip_of_one_column_of_a_one_hot_block_at_the_callers_line():
    x, model = _rows(), nn.Linear(3, 2)
    said = _warned(lambda: counterfactual_fairness_gap(model, x, AttributeFlip(0)))
    assert len(said) == 1 and said[0].filename == __file__
    assert "counterfactual_fairness_gap: the flipped column 0 is one-hot encoded with columns [1]" in str(said[0].message)
    assert not _warned(lambda: counterfactual_fairness_gap(nn.Linear(2, 2), x[:, [0, 2]], AttributeFlip(0)))  # one column kept
    assert not _warned(lambda: counterfactual_fairness_gap(model, x[:8], AttributeFlip(0)))  # 8 rows say little


def test_the_audit_and_the_term_warn_once_in_their_own_names():
    x, model = _rows(), nn.Linear(3, 2)
    said = _warned(lambda: FairnessAudit(AttributeFlip(0), name="fair").run(model, Probe(x)))
    assert len(said) == 1 and str(said[0].message).startswith("FairnessAudit 'fair': the flipped column 0")
    said = _warned(lambda: CounterfactualFairnessTerm(AttributeFlip(0)).loss(model, x, None))
    assert len(said) == 1 and str(said[0].message).startswith("CounterfactualFairnessTerm")
