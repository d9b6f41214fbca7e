"""input_effects, unit_effects and CaptumBaseline(...).run called directly on a model holding a lazy module never
called (nn.LazyLinear) built it inside the call: its weights were drawn during the audit (whose random generators are
then put back), and the model was not left as found, where audit_model refuses such a model. Every estimator and
audit enters audit_mode before its first pass, which now refuses it with audit_model's words (one helper,
lazy_modules.unbuilt_refusal)."""

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_causal import audit_model
from lightning_causal.audits import CaptumBaseline, InputEffectAudit
from lightning_causal.audits.base import Probe
from lightning_causal.causal import causal_graph, input_effects, unit_effects

WORDS = r"^Expected argument `model` to hold no lazy module not built yet but got \['0'\] .*build them first"


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.LazyLinear(4), nn.ReLU(), nn.Linear(4, 3))


CALLS = {
    "input_effects": lambda m, x: input_effects(m, x),
    "unit_effects": lambda m, x: unit_effects(m, x, "1"),
    "causal_graph": lambda m, x: causal_graph(m, x, ["1"]),
    "CaptumBaseline.run": lambda m, x: CaptumBaseline(methods=("Saliency",)).run(m, Probe(x)),
    "InputEffectAudit.run": lambda m, x: InputEffectAudit(ace_values=None).run(m, Probe(x)),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_a_direct_call_on_an_unbuilt_lazy_module_is_refused_and_builds_nothing(call):
    model, x = _model(), torch.randn(5, 6)
    state = torch.get_rng_state()
    with pytest.raises(ValueError, match=WORDS):
        call(model, x)
    assert isinstance(model[0].weight, nn.parameter.UninitializedParameter)
    assert torch.equal(torch.get_rng_state(), state)


def test_the_words_are_audit_models():
    x = torch.randn(5, 6)
    with pytest.raises(MisconfigurationException) as refused:
        audit_model(_model(), InputEffectAudit(ace_values=None), x)
    with pytest.raises(ValueError) as direct:
        input_effects(_model(), x)
    assert str(direct.value) == str(refused.value)


def test_the_model_built_first_is_explained_as_its_twin():
    model, x = _model(), torch.randn(5, 6)
    model(x[:1])
    twin = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 3))
    twin.load_state_dict(model.state_dict())
    assert torch.equal(input_effects(model, x), input_effects(twin, x))
    assert torch.equal(unit_effects(model, x, "1"), unit_effects(twin, x, "1"))
