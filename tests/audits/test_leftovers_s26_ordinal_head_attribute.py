"""The warning of an ordinal head chosen by name (``output="ordinal"``) told to read the head in the ``output=``
lambdas as ``out['ordinal']`` whatever the model returns; ``output="ordinal"`` also selects an attribute of an output
object (``select_output``: a mapping's key, else ``getattr``), and of a dataclass or a namedtuple ``out['ordinal']``
fails ('object is not subscriptable', 'tuple indices must be integers'). The warning names both reads now, ``out.ordinal``
for an object read by attribute, and that way works and is not warned of."""

from __future__ import annotations

import dataclasses
import re
import warnings
from typing import NamedTuple

import pytest
import torch
from torch import Tensor

from lightning_causal.audits import CounterfactualAudit, InputEffectAudit, Probe
from lightning_causal.audits.label_task import level_outputs
from tests.audits.test_review_s26a_ordinal_head_ways import _probe, _TwoHeads


@dataclasses.dataclass
class _Out:
    cls: Tensor
    ordinal: Tensor


class _Pair(NamedTuple):
    cls: Tensor
    ordinal: Tensor


class _Heads(_TwoHeads):
    """The two heads of ``_TwoHeads`` returned as an object read by attribute (``wrap``)."""

    def __init__(self, wrap: type) -> None:
        super().__init__()
        self.wrap = wrap

    def forward(self, x):
        out = super().forward(x)
        return self.wrap(out["cls"], out["ordinal"])


@pytest.mark.parametrize("wrap", [_Out, _Pair])
def test_the_warning_names_the_attribute_read_of_an_output_object_and_that_way_works(wrap):
    model, probe = _Heads(wrap).eval(), _probe()
    with pytest.raises(TypeError):  # the read the warning named alone before
        model(probe.inputs)["ordinal"]
    said = re.escape("in which the head is `out['ordinal']` where it is a mapping (a dict, a ModelOutput), "
                     "`out.ordinal` where it is an object read by attribute (a dataclass, a namedtuple)")
    with pytest.warns(UserWarning, match=said):
        CounterfactualAudit(output="ordinal").validate(model, probe)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result = InputEffectAudit(ace_values=None, output=lambda out: torch.sigmoid(out.ordinal).sum(1, keepdim=True)).run(
            model, Probe(probe.inputs))
    assert not [w for w in seen if "rank" in str(w.message)]
    effects = result.vectors["mean_abs_effect"]  # of the score 1.5 x0 + 0.7 x1: x0's the largest, x2..x4 none
    # (none up to float32 rounding: the intervened pass's matrix product rounds otherwise than the factual pass's on
    # CPUs whose kernels depend on the rows in a pass, 7e-9 on an AVX-512 Xeon)
    assert effects.shape == (5,) and effects[2:].abs().max() <= 1e-6 * effects[0] and effects[0] > effects[1] > 0


def test_a_name_that_is_no_identifier_is_read_by_getattr_and_an_index_by_subscript():
    class _Coral(torch.nn.Module):  # says it is multi-label: a BCE loss it holds
        def __init__(self) -> None:
            super().__init__()
            self.loss = torch.nn.BCEWithLogitsLoss()

    labels, outputs = torch.tensor([0, 3, 2]), torch.zeros(3, 4)
    by_name = level_outputs(labels, outputs, _Coral(), "ordinal-head")
    assert "`out['ordinal-head']` where it is a mapping" in by_name
    assert "`getattr(out, 'ordinal-head')` where it is an object read by attribute" in by_name
    by_index = level_outputs(labels, outputs, _Coral(), 1)
    assert "in which the head is `out[1]`)" in by_index
