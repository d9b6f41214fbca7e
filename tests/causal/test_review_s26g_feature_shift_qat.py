"""feature_shifted called directly on a quantization-aware model (review of newuser43's QAT mend, ef4e040e): its
docstring says ``model`` is not changed, and the copy it returns is frozen."""

from __future__ import annotations

import torch

from lightning_causal.causal.backdoor.feature_shift import feature_shifted
from tests.helpers.quantization import qat_mlp


def test_feature_shifted_leaves_a_qat_models_observers_and_freezes_its_copys():
    import torch.ao.quantization as tq

    model = qat_mlp(4)
    x = torch.randn(40, 4, generator=torch.Generator().manual_seed(2)) * 3  # wider than the ranges held
    before = {k: v.clone() for k, v in model.state_dict().items()}
    shifted = feature_shifted(model, x, 3, epochs=1, batch_size=16)
    after = model.state_dict()
    # before: the labelling passes moved the model's ranges, scales and zero points
    assert [k for k in before if not torch.equal(before[k], after[k])] == []
    assert all(m.training for m in model.modules())
    fake_quants = [m for m in shifted.modules() if isinstance(m, tq.FakeQuantizeBase)]
    assert fake_quants and all(int(m.observer_enabled) == 0 for m in fake_quants)  # before: on
    kept = {k: v.clone() for k, v in shifted.state_dict().items()}
    with torch.no_grad():
        shifted(x)
    assert all(torch.equal(v, kept[k]) for k, v in shifted.state_dict().items())
