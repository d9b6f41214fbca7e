"""An in-context learner's queries explained with its context set as forward arguments (newuser103's trial,
/tmp/newuser103/variants.py): a context of as many rows as the queries is gathered by row with each query unless
passed with ``mark_whole``. ``input_effects`` refused it naming ``mark_whole``; ``FairnessAudit`` refused it as a
forward that depends on its batch (its check's call had no ``args`` to name), and ``SobolAudit`` as forward
arguments that cannot follow drawn inputs, neither naming ``mark_whole``, which makes both run."""

from __future__ import annotations

import pytest
import torch

from lightning_causal import AttributeFlip
from lightning_causal.audits import FairnessAudit, Probe, SobolAudit
from lightning_causal.causal import mark_whole
from tests.helpers.in_context import InContext, episodes


def probe(whole: bool) -> Probe:
    b = episodes(1, queries=6, context=6)  # as many queries as context rows
    x_q, x_ctx = b["x_q"][0], b["x_ctx"][0]
    x_q[:, 0], x_ctx[:, 0] = (x_q[:, 0] > 0).float(), (x_ctx[:, 0] > 0).float()  # a binary sensitive column
    context = (x_ctx, b["y_ctx"][0])
    return Probe(x_q, b["y_q"][0], mark_whole(context, [0, 1]) if whole else context)


@pytest.mark.parametrize("audit", [FairnessAudit(AttributeFlip(0), sensitive=0), SobolAudit(n=64, n_bootstrap=4)])
def test_a_context_set_gathered_by_row_is_refused_naming_mark_whole(audit):
    with pytest.raises(ValueError, match=r"mark_whole\(\(") as err:
        audit.run(InContext().eval(), probe(whole=False))
    assert "control flow on a batch statistic, e.g." not in str(err.value)


def test_the_fairness_gap_with_the_context_whole_is_the_hand_gap():
    model, p = InContext().eval(), probe(whole=True)
    result = FairnessAudit(AttributeFlip(0), sensitive=0).run(model, p)
    x_ctx, y_ctx = p.additional_forward_args
    flipped = p.inputs.clone()
    flipped[:, 0] = 1 - flipped[:, 0]
    with torch.no_grad():
        probs, probs_cf = model(p.inputs, x_ctx, y_ctx).softmax(1), model(flipped, x_ctx, y_ctx).softmax(1)
    t = probs.argmax(1, keepdim=True)
    gap = (probs.gather(1, t) - probs_cf.gather(1, t)).abs().mean()
    assert result.scalars["cf_gap"] == pytest.approx(float(gap), abs=1e-6)
    assert SobolAudit(n=64, n_bootstrap=4).run(model, p).vectors["total"].shape == (4,)
