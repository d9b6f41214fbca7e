"""An audit of one's own that calls the model itself on a probe cut from a larger one, whose one forward argument is a
weight of as many rows as the cut's samples (``Probe(x of 4, additional_forward_args=w of 3 rows)``, ``probe_size=3``):
the cut marks the weight whole (85c6b00a, b169544f), and a marked value is a tuple of one, so
``model(probe.first, probe.additional_forward_args)`` stopped with "argument 'weight' must be Tensor, not
_WholeTuple". docs/recipes.md (Writing your own audit) now says how to call the model: through ``ForwardArgs``, as the
estimators do (a tuple positional, a mapping keywords, one value one argument, the marked tuple alike)."""

import torch

from lightning_causal import audit_model
from lightning_causal.audits import Audit, AuditResult
from lightning_causal.audits.base import Probe
from lightning_causal.causal.engine import ForwardArgs
from tests.test_review_s29b_one_whole_argument import _Functional  # F.linear(x, w)


class _OwnAudit(Audit):
    """The mean output of the probe, the model called by hand as docs/recipes.md says."""

    name = "own"

    def run(self, model, probe, *, max_batch_size=None):
        fa = ForwardArgs(probe.additional_forward_args, len(probe))
        out = model(probe.first, *fa.args, **fa.kwargs)
        return AuditResult(self.name, scalars={"mean": float(out.mean())})


def test_the_recipes_call_takes_a_weight_the_cut_marks_whole():
    x = torch.arange(20.0).reshape(4, 5) / 10
    w = torch.ones(3, 5)  # every output the sum of a row of x: rows 0-2 sum to 1.0, 3.5, 6.0
    for given in (w, (w,), {"w": w}):
        cut = Probe(x, additional_forward_args=given).subset(slice(0, 3))
        assert isinstance(cut.additional_forward_args, (tuple, dict))  # marked: a tuple of one for the one tensor
        result = audit_model(_Functional(), [_OwnAudit()], Probe(x, additional_forward_args=given), probe_size=3)[0]
        assert abs(result.scalars["mean"] - 3.5) < 1e-6  # (1.0 + 3.5 + 6.0) / 3
