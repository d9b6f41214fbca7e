"""A model of two inputs explained at one of them (``explain=``) gets the other input as a forward argument before
the probe's own (chosen_input). A weight passed as a forward argument beside a probe cut to ``probe_size`` (12
samples, a weight of 4 rows, ``probe_size=4``) is passed whole, marked so by the cut (forward_args.mark_whole);
chosen_input built the arguments ``(*others, *args)`` or ``{**args, '_input_k': ...}`` anew, without the marks, and
the weight of 4 rows was read as one row per sample ("Expected the model to treat samples independently"). The marks
are kept, after the other inputs (forward_args.marks_kept): the results equal those of the same model holding the
weight."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal import audit_model
from lightning_causal.audits import InputEffectAudit
from lightning_causal.audits.base import Probe


class _Two(nn.Module):
    """``tanh((a + 2 b) W^T)`` summed over pairs of units, plus a bias: ``W [4, 5]`` as a forward argument (positional
    or keyword) or held (``held``: the hand call ``model(a, b, W)``)."""

    def __init__(self, held: torch.Tensor | None = None) -> None:
        super().__init__()
        self.p, self.held = nn.Parameter(torch.zeros(2)), held

    def forward(self, a, b, w=None):
        w = self.held if w is None else w
        return torch.tanh(F.linear(a + 2 * b, w)).reshape(a.shape[0], -1, 2).sum(-1) + self.p


@pytest.mark.parametrize("keywords", [False, True], ids=["positional", "keyword"])
@pytest.mark.parametrize("explain", [0, 1])
def test_an_input_explained_beside_a_weight_of_the_cut_probes_rows(explain, keywords):
    g = torch.Generator().manual_seed(0)
    a, b, w = torch.randn(12, 5, generator=g), torch.randn(12, 5, generator=g), torch.randn(4, 5, generator=g)
    audit = InputEffectAudit(ace_values=None, target=0)
    given = audit_model(_Two(), [audit], Probe((a, b), additional_forward_args={"w": w} if keywords else (w,)),
                        probe_size=4, explain=explain)[0]
    hand = audit_model(_Two(w), [InputEffectAudit(ace_values=None, target=0)], Probe((a, b)), probe_size=4, explain=explain)[0]
    assert given.scalars == hand.scalars
    assert torch.equal(given.maps["effect"], hand.maps["effect"])
