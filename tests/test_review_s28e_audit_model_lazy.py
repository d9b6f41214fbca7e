"""audit_model on a model with a lazy module not built yet (nn.LazyLinear before its first call) built it in the
audits' passes, from their seeded generators: the model was not left as found (its docstring's promise), and a fit
after it started from the audits' draw, not from training's (reported by leftovers_s28b, 6202ef02). It is refused,
naming the lazy module and how to build it; a model built by one forward pass is audited and left as found."""

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_causal import audit_model
from lightning_causal.audits import InputEffectAudit


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.LazyLinear(4), nn.ReLU(), nn.Linear(4, 2))


def test_a_lazy_module_not_built_is_refused_and_left_unbuilt():
    model = _model()
    with pytest.raises(MisconfigurationException, match=r"^Expected argument `model` to hold no lazy module not built yet "
                                                        r"but got \['0'\] .*build them first, with one forward pass"):
        audit_model(model, InputEffectAudit(ace_values=None), torch.randn(8, 3))
    assert isinstance(model[0].weight, nn.parameter.UninitializedParameter)


def test_a_lazy_model_built_first_is_audited_and_left_as_found():
    model = _model()
    x = torch.randn(8, 3)
    model(x[:1])
    before = [p.clone() for p in model.parameters()]
    (result,) = audit_model(model, InputEffectAudit(ace_values=None), x)
    assert result.vectors["mean_abs_effect"].shape == (3,)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
