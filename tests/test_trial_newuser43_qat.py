"""A quantization-aware model (``prepare_qat``) audited during the fit (newuser43's trial).

Its fake-quant modules' observers update their range and scale in every forward pass, in eval mode too,
so before the mend every batched estimator refused the model ("its forward depends on the batch"), and
an effect would have mixed the scales of whichever rows shared its batch. Inside ``audit_mode`` the
observers are off: the estimators explain the model with the scales it holds, and leave them as they were.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from lightning_causal.causal import unit_effects
from tests.helpers.quantization import qat_mlp


def _qat_mlp() -> nn.Module:
    return qat_mlp(6, backend="fbgemm", rows=32)  # a training step's forward: ranges set


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_unit_effects_of_a_qat_model_are_those_of_its_held_scales_and_leave_the_observers_as_they_were():
    import torch.ao.quantization as tq

    model = _qat_mlp()
    x = torch.randn(10, 6, generator=torch.Generator().manual_seed(2))
    before = _state(model)
    effects = unit_effects(model, x, "1", target=1)  # before: ValueError, "its forward depends on the batch"
    after = _state(model)
    assert before.keys() == after.keys()
    for k in before:  # weights, observers' min_val/max_val, scale, zero_point, observer_enabled
        assert torch.equal(before[k], after[k]), k
    assert model.training and all(int(m.observer_enabled) == 1 for m in model.modules()
                                  if isinstance(m, tq.FakeQuantizeBase))

    # reference: each sample alone, each unit zeroed by a hook of our own, observers off as convert() would have them
    frozen = _qat_mlp().eval()
    frozen.apply(tq.disable_observer)
    expected = torch.zeros(10, 8)
    with torch.no_grad():
        for i in range(10):
            clean = frozen(x[i:i + 1])[0, 1]
            for u in range(8):
                def zero(module, args, out, u=u):
                    out = out.clone()
                    out[:, u] = 0
                    return out
                handle = frozen[1].register_forward_hook(zero)
                expected[i, u] = clean - frozen(x[i:i + 1])[0, 1]
                handle.remove()
    torch.testing.assert_close(effects, expected)
    assert expected.abs().max() > 0.1  # the units matter: the comparison is not of zeros


class _ConvBnReLU(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        import torch.ao.quantization as tq

        self.quant, self.dequant = tq.QuantStub(), tq.DeQuantStub()
        self.conv, self.bn, self.relu = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()
        self.fc = nn.Linear(4 * 36, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dequant(self.fc(self.relu(self.bn(self.conv(self.quant(x)))).flatten(1)))


def test_the_default_layers_of_a_fused_qat_model_are_its_fused_layers_not_their_batch_norms():
    import torch.ao.quantization as tq

    from lightning_causal.causal import capture, layer_causal_map
    from lightning_causal.causal.structure.default_layers import leaf_layers

    torch.manual_seed(0)
    model = _ConvBnReLU().train()
    model.qconfig = tq.get_default_qat_qconfig("fbgemm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = tq.fuse_modules_qat(model, [["conv", "bn", "relu"]])
        tq.prepare_qat(model, inplace=True)
    x = torch.randn(12, 1, 6, 6, generator=torch.Generator().manual_seed(3))
    model(x)
    model.eval()
    # before: ['conv.bn', 'fc'], the batch norm inside the fused ConvBnReLU2d, before its ReLU and fake quantization
    assert leaf_layers(model) == ["conv", "fc"]
    assert layer_causal_map(model, x).layers == ["conv", "fc"]
    with torch.no_grad(), capture(model, ["conv", "fc:input"]) as seen:  # the fused layer's output is what fc reads
        model(x)
    torch.testing.assert_close(seen["conv"].flatten(1), seen["fc:input"])
