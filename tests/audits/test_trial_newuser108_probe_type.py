"""newuser108 trial: ``Audit.run(model, probe)`` given the samples as they are, ``(x, y)`` or ``x``, ended on a bare
``AttributeError: 'tuple' object has no attribute 'inputs'`` (``'labels'`` for ``UnitImportanceAudit``), naming neither
the parameter nor ``Probe``; every audit's run now refuses it with a ``TypeError`` that names both and the way out."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal import (
    AttributeFlip,
    FairnessAudit,
    InputEffectAudit,
    Probe,
    UnitImportanceAudit,
)

_AUDITS = [InputEffectAudit(), UnitImportanceAudit(["0"]), FairnessAudit(AttributeFlip(0))]


@pytest.mark.parametrize("audit", _AUDITS, ids=lambda a: type(a).__name__)
@pytest.mark.parametrize("given", ["tuple", "tensor"])
def test_samples_given_as_they_are_name_the_probe(audit, given: str) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).eval()
    x, y = torch.randn(6, 3), torch.tensor([0, 1] * 3)
    x[:, 0] = (torch.arange(6) % 2).float()
    with pytest.raises(TypeError, match=r"argument `probe` to be a Probe .* but got (tuple|Tensor): wrap the samples, "
                                        r"`audit\.run\(model, Probe\(x, y\)\)`"):
        audit.run(model, (x, y) if given == "tuple" else x)
    assert audit.run(model, Probe(x, y)).audit == audit.name  # the same samples wrapped run
