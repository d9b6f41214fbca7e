"""newuser37: a model whose head changes between audits (class-incremental learning, a resume into another head).

SobolAudit(target=None) keeps the class it chose at its first audit for every later one. Where the head shrank
since (or a resumed state names a class the new head lacks), the audit failed deep in the estimator with
"Expected the model to return [M, classes] with class 9 but got shape [..., 3]", naming neither the class's origin
nor `target=`; it now refuses at validation with both.
"""

import pytest
import torch
from torch import nn

from lightning_causal import Probe, SobolAudit


def _classifier(n_out: int, favoured: int) -> nn.Linear:
    net = nn.Linear(4, n_out)
    with torch.no_grad():
        net.weight.normal_(0, 0.1, generator=torch.Generator().manual_seed(0))
        net.bias.zero_()
        net.bias[favoured] = 5.0  # every probe sample is predicted as `favoured`
    return net


def test_a_class_kept_from_the_first_audit_that_the_shrunk_head_lacks_is_refused_naming_target():
    probe = Probe(torch.randn(16, 4, generator=torch.Generator().manual_seed(1)))
    audit = SobolAudit(n=32, n_bootstrap=0)
    first = audit.run(_classifier(10, favoured=9).eval(), probe)
    assert first.meta["target"] == 9  # chosen at the first audit: the class predicted most often
    with pytest.raises(ValueError, match=r"explains class 9, chosen at its first audit .*now returns 3 output.*pass `target=`"):
        audit.run(_classifier(3, favoured=0).eval(), probe)


def test_a_grown_head_keeps_the_class_of_the_first_audit():
    probe = Probe(torch.randn(16, 4, generator=torch.Generator().manual_seed(1)))
    audit = SobolAudit(n=32, n_bootstrap=0)
    audit.run(_classifier(5, favoured=2).eval(), probe)
    grown = audit.run(_classifier(10, favoured=7).eval(), probe)  # class-incremental: 5 -> 10 classes
    assert grown.meta["target"] == 2  # one quantity across the series, not the new head's most predicted class
