"""The Lightning-facing string options are ``Literal`` types whose values are exactly what the
constructors accept: ``CausalAuditCallback(on_error=, figure_kind=)``, ``TensorBoardRenderer(figure_kind=)``,
``SobolAudit(sampler=)``, ``CausalGraphAudit(correction=, alternative=)``, ``UnitImportanceAudit(method=)``,
``CounterfactualAudit(towards=)``, ``AuditEarlyStopping``/``AuditModelCheckpoint(mode=)``, ``causal_pruning_fn(scope=)``
(before, each was ``str``: a type checker let ``SobolAudit(sampler="gaussian")`` through, which fails at
run time). Each Literal value is accepted; a value outside raises naming the parameter."""

from __future__ import annotations

import typing

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_causal.audits import (
    CausalGraphAudit,
    CounterfactualAudit,
    InputEffectAudit,
    SobolAudit,
    UnitImportanceAudit,
)
from lightning_causal.callbacks import (
    AuditEarlyStopping,
    AuditModelCheckpoint,
    CausalAuditCallback,
    causal_pruning_fn,
)
from lightning_causal.reporting import TensorBoardRenderer

CASES = [  # (constructor, parameter, a value outside, the error)
    (lambda **kw: CausalAuditCallback([InputEffectAudit()], **kw), "on_error", "ignore", MisconfigurationException),
    (lambda **kw: CausalAuditCallback([InputEffectAudit()], **kw), "figure_kind", "heatmap", MisconfigurationException),
    (TensorBoardRenderer, "figure_kind", "heatmap", ValueError),
    (SobolAudit, "sampler", "gaussian", ValueError),
    (lambda **kw: CausalGraphAudit(["0"], **kw), "correction", "bonferroni", ValueError),
    (lambda **kw: CausalGraphAudit(["0"], **kw), "alternative", "less", ValueError),
    (lambda **kw: UnitImportanceAudit(["0"], **kw), "method", "fast", ValueError),
    (CounterfactualAudit, "towards", "runner-up", ValueError),
    (lambda **kw: AuditEarlyStopping("causal/x/y", **kw), "mode", "maximum", MisconfigurationException),
    (lambda **kw: AuditModelCheckpoint("causal/x/y", **kw), "mode", "maximum", MisconfigurationException),
    (lambda **kw: causal_pruning_fn(nn.Linear(2, 2), torch.zeros(1, 2), [""], **kw), "scope", "local", MisconfigurationException),
]
OWNERS = [CausalAuditCallback.__init__, CausalAuditCallback.__init__, TensorBoardRenderer.__init__, SobolAudit.__init__,
          CausalGraphAudit.__init__, CausalGraphAudit.__init__, UnitImportanceAudit.__init__, CounterfactualAudit.__init__,
          AuditEarlyStopping.__init__, AuditModelCheckpoint.__init__, causal_pruning_fn]


@pytest.mark.parametrize(("make", "param", "bad", "error", "owner"), [(*c, o) for c, o in zip(CASES, OWNERS, strict=True)],
                         ids=[f"{i}-{c[1]}" for i, c in enumerate(CASES)])
def test_every_literal_value_is_accepted_and_others_raise_naming_the_parameter(make, param, bad, error, owner):
    hint = typing.get_type_hints(owner)[param]
    values = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(values[0]) is typing.Literal:  # `FigureKind | None`: the Literal inside the Optional
        values = list(typing.get_args(values[0]))
    assert len(values) >= 2 and all(isinstance(v, str) for v in values)
    for value in values:
        make(**{param: value})
    with pytest.raises(error, match=f"`{param}`.*{bad}"):  # Lightning quotes no value
        make(**{param: bad})
