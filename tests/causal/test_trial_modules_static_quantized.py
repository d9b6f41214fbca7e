"""Statically quantized models (``torch.ao.quantization.prepare``/``convert``): their layers pass
quantized tensors, on which torch has no ``where``/``zero_``/arithmetic. An intervention there
failed with torch's ``Could not run 'aten::where.self' with arguments from the 'QuantizedCPU'
backend``, naming no site; it is now refused naming the site and the way out. Input effects (the
inputs are float, the scales fixed: rows are independent) equal brute force."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import Zero, causal_graph, input_effects, intervene, unit_effects


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.quant, self.dequant = torch.ao.quantization.QuantStub(), torch.ao.quantization.DeQuantStub()
        self.a, self.relu, self.b = nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)

    def forward(self, x):
        return self.dequant(self.b(self.relu(self.a(self.quant(x)))))


def _quantized() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    x = torch.randn(32, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notices
        model = _Net().eval()
        model.qconfig = torch.ao.quantization.get_default_qconfig(torch.backends.quantized.engine)
        prepared = torch.ao.quantization.prepare(model)
        prepared(x)  # calibration
        return torch.ao.quantization.convert(prepared).eval(), x[:6]


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


_CASES = [(e, s) for e in ("unit_effects", "unit_effects_full", "intervene") for s in ("a", "relu", "a:input")]


@pytest.mark.parametrize(("estimator", "site"), [*_CASES, ("causal_graph", "a"), ("causal_graph", "relu")])
def test_an_intervention_on_a_quantized_activation_is_refused_naming_the_site(estimator, site):
    model, x = _quantized()
    match = rf"Expected the output of '{site}' to be a float tensor but it is quantized \(torch.quint8.*float model"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TypeError, match=match):
            if estimator == "unit_effects":
                unit_effects(model, x, site)
            elif estimator == "unit_effects_full":
                unit_effects(model, x, site, use_suffix=False)
            elif estimator == "causal_graph":
                causal_graph(model, x, [site])
            else:
                with intervene(model, {site: Zero(units=[0])}):
                    model(x)
    assert _hooks(model) == 0


def test_input_effects_on_a_statically_quantized_model_equal_brute_force():
    model, x = _quantized()
    with torch.no_grad():
        clean = model(x)
        t = clean.argmax(1, keepdim=True)
        expected = torch.stack([(clean.gather(1, t) - model(x.index_fill(1, torch.tensor([g]), 0.0)).gather(1, t))[:, 0]
                                for g in range(4)], 1)
    torch.testing.assert_close(input_effects(model, x), expected, rtol=0, atol=0)


@pytest.mark.parametrize("site", ["a", "relu"])
def test_the_layer_map_refuses_a_quantized_layer_naming_it(site):
    # it failed inside torch (aten::sub.out on QuantizedCPU) without naming the layer
    from lightning_causal.causal import layer_causal_map

    model, x = _quantized()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TypeError, match=rf"output of '{site}' to be a float tensor but it is quantized"):
            layer_causal_map(model, x, layers=[site, "b"])
