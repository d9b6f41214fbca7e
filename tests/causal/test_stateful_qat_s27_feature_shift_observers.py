"""feature_shifted of a quantization-aware model (``prepare_qat``) called directly tuned its copy with the fake-quant
observers on, so the copy's ranges and scales moved with the tuning's rows, while BackdoorSuppressionTerm (which calls
it inside ``audit_mode``, observers off) tuned a copy on the scales the model holds: two copies of the same model and
seed differed (19 state entries, the scales and the weights tuned through them). The copy tunes with its observers
off now, either way."""

from __future__ import annotations

import torch

from lightning_causal.causal.backdoor.feature_shift import feature_shifted
from lightning_causal.causal.engine.state import audit_mode
from tests.helpers.quantization import qat_mlp


def test_a_qat_models_feature_shifted_copy_is_the_same_called_directly_and_inside_the_term() -> None:
    model = qat_mlp(4)
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(1)) * 3  # wider than the ranges the model holds
    direct = feature_shifted(model, x, 3, epochs=2)
    with audit_mode(model):  # as BackdoorSuppressionTerm(contrast=True) calls it
        inside = feature_shifted(model, x, 3, epochs=2)
    theirs = inside.state_dict()
    assert [k for k, v in direct.state_dict().items() if not torch.equal(v, theirs[k])] == []
    for k, v in model.state_dict().items():  # the scales the model holds, not moved by the tuning's rows
        if k.endswith(("scale", "zero_point", "min_val", "max_val")):
            assert torch.equal(direct.state_dict()[k], v), k
