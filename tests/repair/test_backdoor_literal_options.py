"""The string options of BackdoorSuppressionTerm (path, when_unflagged), mad_anomaly_index (side) and
LightningClassifier (optimizer) were typed ``str`` though their values are fixed (the review of the
change, git diff fb3266c: docs/api.md says such options are Literal types): a type checker passed
``when_unflagged="always"``, which raises. Each Literal holds exactly the values the code accepts."""

from __future__ import annotations

import typing

import pytest
import torch

from lightning_causal.causal.backdoor.suspects import mad_anomaly_index
from lightning_causal.models import LightningClassifier
from lightning_causal.repair import BackdoorSuppressionTerm


@pytest.mark.parametrize("function, parameter, bad, build", [
    (BackdoorSuppressionTerm.__init__, "path", "all", lambda v: BackdoorSuppressionTerm(path=v, suspects=["0"] if v == "units" else None)),
    (BackdoorSuppressionTerm.__init__, "when_unflagged", "always", lambda v: BackdoorSuppressionTerm(when_unflagged=v)),
    (mad_anomaly_index, "side", "upper", lambda v: mad_anomaly_index(torch.tensor([1.0, 2.0, 3.0]), side=v)),
    (LightningClassifier.__init__, "optimizer", "adamw", lambda v: LightningClassifier(torch.nn.Linear(2, 2), optimizer=v)),
])
def test_each_literal_value_is_accepted_and_a_value_outside_is_refused(function, parameter, bad, build):
    values = typing.get_args(typing.get_type_hints(function)[parameter])
    assert values and all(isinstance(v, str) for v in values)
    for value in values:
        build(value)
    with pytest.raises(ValueError, match=parameter):
        build(bad)
