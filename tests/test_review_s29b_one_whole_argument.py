"""A probe's one forward argument given as a tensor (``Probe(x, additional_forward_args=w)``, a weight ``[3, 5]`` for
a functional layer, passed whole) reached an audit of one's own as a tuple ``(w,)`` after 85c6b00a: Probe.subset
marked every tensor the probe passes whole, and a marked value is a tuple (forward_args.mark_whole), while the
callback's and audit_model's probe is always such a subset (its first probe_size samples). ``run`` calling
``model(probe.first, probe.additional_forward_args)``, as docs/recipes.md's own-audit recipe reads the probe, stopped
with "linear(): argument 'weight' (position 2) must be Tensor, not _WholeTuple". A subset marks only the tensors whose
first dimension equals its samples (those it would read by row; the others are whole by their shape), so one tensor
stays that tensor."""

import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal import audit_model
from lightning_causal.audits import Audit, AuditResult
from lightning_causal.audits.base import Probe


class _Functional(nn.Module):
    def forward(self, x, w):
        return F.linear(x, w)


class _OwnAudit(Audit):
    """The mean output of the probe, the model called by hand with the probe's forward argument."""

    name = "own"

    def run(self, model, probe, *, max_batch_size=None):
        out = model(probe.first, probe.additional_forward_args)
        return AuditResult(self.name, scalars={"mean": float(out.mean())})


def test_one_tensor_argument_reaches_an_own_audit_as_that_tensor():
    x = torch.arange(20.0).reshape(4, 5) / 10
    w = torch.ones(3, 5)  # every output the sum of a row: mean over rows 0, 1 of x.sum(1) = (1.0 + 3.5) / 2
    result = audit_model(_Functional(), [_OwnAudit()], Probe(x, additional_forward_args=w), probe_size=2)[0]
    assert result.scalars["mean"] == 2.25
    assert Probe(x, additional_forward_args=w).subset(slice(0, 2)).additional_forward_args is w
    assert isinstance(Probe(x, additional_forward_args=w).subset(slice(0, 3)).additional_forward_args, tuple)  # 3 rows: marked
