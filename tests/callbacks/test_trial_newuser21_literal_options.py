"""The Lightning-facing string options are ``Literal`` types whose values are exactly what the
constructors accept: ``CausalAuditCallback(on_error=, figure_kind=)``, ``TensorBoardRenderer(figure_kind=)``,
``SobolAudit(sampler=)``, ``CausalGraphAudit(correction=, alternative=)``, ``UnitImportanceAudit(method=)``
(before, each was ``str``: a type checker let ``SobolAudit(sampler="gaussian")`` through, which fails at
run time). Each Literal value is accepted; a value outside raises naming the parameter."""

from __future__ import annotations

import typing

import pytest
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_causal.audits import (
    CausalGraphAudit,
    InputEffectAudit,
    SobolAudit,
    UnitImportanceAudit,
)
from lightning_causal.callbacks import CausalAuditCallback
from lightning_causal.reporting import TensorBoardRenderer

CASES = [  # (constructor, parameter, a value outside, the error)
    (lambda **kw: CausalAuditCallback([InputEffectAudit()], **kw), "on_error", "ignore", MisconfigurationException),
    (lambda **kw: CausalAuditCallback([InputEffectAudit()], **kw), "figure_kind", "heatmap", MisconfigurationException),
    (TensorBoardRenderer, "figure_kind", "heatmap", ValueError),
    (SobolAudit, "sampler", "gaussian", ValueError),
    (lambda **kw: CausalGraphAudit(["0"], **kw), "correction", "bonferroni", ValueError),
    (lambda **kw: CausalGraphAudit(["0"], **kw), "alternative", "less", ValueError),
    (lambda **kw: UnitImportanceAudit(["0"], **kw), "method", "fast", ValueError),
]
CLASSES = {"on_error": CausalAuditCallback, "sampler": SobolAudit, "correction": CausalGraphAudit,
           "alternative": CausalGraphAudit, "method": UnitImportanceAudit}


@pytest.mark.parametrize(("make", "param", "bad", "error"), CASES, ids=[f"{i}-{c[1]}" for i, c in enumerate(CASES)])
def test_every_literal_value_is_accepted_and_others_raise_naming_the_parameter(make, param, bad, error):
    owner = CLASSES.get(param, CausalAuditCallback if make is not TensorBoardRenderer else TensorBoardRenderer)
    hint = typing.get_type_hints(owner.__init__)[param]
    values = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(values[0]) is typing.Literal:  # `FigureKind | None`: the Literal inside the Optional
        values = list(typing.get_args(values[0]))
    assert len(values) >= 2 and all(isinstance(v, str) for v in values)
    for value in values:
        make(**{param: value})
    with pytest.raises(error, match=f"`{param}`.*{bad!r}"):
        make(**{param: bad})
