"""Review of 0c8b05de: InputEffectAudit's top table of groups with padding still listed NaN effects first.

0c8b05de made largest_k sort NaN last, so that the groups a float16 model ignores, NaN (inf - inf) where its logits
overflow, no longer head the top table; the path for groups real in only some samples (padding, or an id no element
carries: superpixels numbered from 1) kept its own torch.sort, NaN first: [3, 4, 1, 2] for the overflowing model.
"""

import warnings

import torch

from lightning_causal import InputEffectAudit
from lightning_causal.audits import Probe
from tests.test_trial_newuser55_nan_scores import _overflowing


def test_groups_numbered_from_one_list_nan_last_as_without_gaps():
    model, x = _overflowing()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = InputEffectAudit(target=1, ace_values=None).run(model, Probe(x))
        gaps = InputEffectAudit(target=1, ace_values=None, feature_mask=torch.tensor([[1, 2, 3, 4]])).run(model, Probe(x))
    assert [row["group"] for row in plain.tables["top_groups"]] == [0, 1, 2, 3]
    assert [row["group"] for row in gaps.tables["top_groups"]] == [1, 2, 3, 4]  # before: [3, 4, 1, 2]
    assert gaps.vectors["mean_abs_effect"][0].isnan()  # group 0, real nowhere, is not listed


def test_ties_and_order_of_finite_effects_with_gaps():
    model = torch.nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 3.0, 3.0, 2.0]]))
    x = torch.ones(8, 4)  # effect of column j: w_j (baseline 0); columns 1 and 2 tied
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = InputEffectAudit(ace_values=None, top_k=3, feature_mask=torch.tensor([[1, 2, 3, 4]])).run(model.eval(), Probe(x))
    assert [(row["group"], row["mean_abs_effect"]) for row in result.tables["top_groups"]] == [(2, 3.0), (3, 3.0), (4, 2.0)]
