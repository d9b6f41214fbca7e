"""Models as users wrap them: weight parametrizations (``torch.nn.utils.parametrize``) in the layer
map's default layers."""

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrizations, parametrize

from lightning_causal.causal import layer_causal_map
from lightning_causal.causal.structure.default_layers import leaf_layers


class _Double(nn.Module):
    def forward(self, w):
        return 2 * w


class _LearnedScale(nn.Module):  # a parametrization with a parameter of its own
    def __init__(self):
        super().__init__()
        self.s = nn.Parameter(torch.tensor(0.5, dtype=torch.float64))

    def forward(self, w):
        return self.s * w


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 5), nn.ReLU(), nn.Linear(5, 2)).double().eval()


def test_parametrized_layers_stay_in_the_layer_map_default_layers_with_the_plain_models_numbers():
    x = torch.randn(12, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for wrap in (parametrizations.weight_norm, parametrizations.spectral_norm,
                 lambda m: parametrize.register_parametrization(m, "weight", _Double()),
                 lambda m: parametrize.register_parametrization(m, "weight", _LearnedScale())):
        model = _mlp()
        wrap(model[2])
        with torch.no_grad():  # the plain twin: the parametrized layer's weight as it computes it
            twin = _mlp()
            twin[2].weight.copy_(model[2].weight)
        assert leaf_layers(model) == ["0", "2", "4"]
        got, want = layer_causal_map(model, x), layer_causal_map(twin, x)
        assert got.layers == want.layers == ["0", "2", "4"]
        torch.testing.assert_close(got.response, want.response)
        torch.testing.assert_close(got.cka, want.cka)


def test_a_weight_parametrization_is_refused_as_a_site_naming_its_layer():
    import pytest

    from lightning_causal.causal import Zero, capture, intervene, unit_effects

    model, x = _mlp(), torch.randn(4, 6, dtype=torch.float64)
    parametrizations.weight_norm(model[2])
    for name in ("2.parametrizations.weight", "2.parametrizations.weight.0", "2.parametrizations.weight.original0"):
        # before: intervene zeroed the layer's weight and capture recorded it [5, 8] as if an activation, silently;
        # unit_effects blamed batch_first=False
        with pytest.raises(ValueError, match=r"weight parametrizations of module '2'.*name the layer '2'"):
            with intervene(model, {name: Zero()}):
                model(x)
        with pytest.raises(ValueError, match=r"weight parametrizations of module '2'"):
            with capture(model, [name]):
                model(x)
        with pytest.raises(ValueError, match=r"name the layer '2'"):
            unit_effects(model, x, name, target=0)


def test_a_parameter_name_is_answered_with_its_module():
    import pytest
    from torch.nn.utils import prune

    from lightning_causal.causal import unit_effects

    model = _mlp()
    prune.l1_unstructured(model[2], "weight", 0.5)
    with pytest.raises(ValueError, match=r"'2.weight_orig' is a tensor \('weight_orig'\) of module '2'; name the module '2'"):
        unit_effects(model, torch.randn(4, 6, dtype=torch.float64), "2.weight_orig", target=0)


class _Stack(nn.Sequential):
    """A container with a forward of its own that runs its children in turn (as diffusion models'
    ``TimestepEmbedSequential`` does): it meets an attached input site as its last child."""

    def forward(self, x):
        for layer in self:
            x = layer(x)
        return x


@pytest.mark.parametrize("block", [nn.Sequential, _Stack], ids=["sequential", "subclass_with_own_forward"])
def test_the_input_of_a_sequential_block_is_intervened_on_once_at_its_input(block):
    """The site, attached to the block as a child, also ran as its last layer (on its output): interventions hit
    the block's input and output and capture kept the output (errors up to 0.2). 6d0ad7a mended the plain
    nn.Sequential only (by swapping in the children it had); a subclass with its own forward still ran the site
    (off by up to 0.16). Now the site passes a value through untouched, without hooks, when the consumer's own
    forward calls it after its input was routed through it."""
    from lightning_causal.causal import Zero, capture, intervene, unit_effects

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), block(nn.Linear(8, 8), nn.Tanh()), nn.Linear(8, 2)).double().eval()
    x = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        base, want = model(x)[:, 0], torch.zeros(5, 8, dtype=torch.float64)
        for u in range(8):  # brute force: a pre-hook zeroing unit u of the block's input
            handle = model[1].register_forward_pre_hook(lambda _m, args, u=u: (args[0].index_fill(1, torch.tensor([u]), 0.0),))
            want[:, u] = base - model(x)[:, 0]
            handle.remove()
        for use_suffix in (True, False):  # the hooks path and full passes
            torch.testing.assert_close(unit_effects(model, x, "1:input", target=0, use_suffix=use_suffix), want)
        with intervene(model, {"1:input": Zero(units=[0])}):
            torch.testing.assert_close(model(x)[:, 0], base - want[:, 0])
        with capture(model, ["1:input"]) as acts:
            model(x)
        torch.testing.assert_close(acts["1:input"], model[0](x))
    # left as it was
    assert "forward" not in vars(model[1]) and len(model[1]) == 2 and not model[1]._forward_hooks and not model[1]._forward_pre_hooks


class _Stem(nn.Module):
    def __init__(self, compiled):
        super().__init__()
        torch.manual_seed(0)
        self.stem, self.head = nn.Linear(6, 12), nn.Linear(10, 3)
        body = nn.Sequential(nn.Tanh(), nn.Linear(12, 10), nn.Tanh())
        self.body = torch.compile(body, backend="eager") if compiled else body

    def forward(self, x):
        return self.head(self.body(self.stem(x)))


def test_the_attribution_estimate_looks_inside_a_container_on_every_path():
    from lightning_causal.causal import unit_effects

    x = torch.randn(6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    model = _Stem(compiled=False).double().eval()
    # brute force: the first-order step at z = tanh(h), the input of body.1 (the first module that mixes units),
    # with z's change computed exactly: e_u = sum_i (z_i(h) - z_i(h | h_u := 0)) df_0/dz_i
    with torch.no_grad():
        h = model.stem(x)
    z = torch.tanh(h).requires_grad_(True)
    (grad,) = torch.autograd.grad(model.head(model.body[2](model.body[1](z)))[:, 0].sum(), z)
    want = torch.stack([((torch.tanh(h) - torch.tanh(h.index_fill(1, torch.tensor([u]), 0.0))) * grad).sum(1)
                        for u in range(12)], 1)
    torch.testing.assert_close(unit_effects(model, x, "stem", target=0, method="attribution"), want)
    # before: on the full path (and for a compiled body, which runs on the hook path) the nn.Sequential (or the
    # compiled wrapper) was taken for the module that mixes units, and the estimate was AtP's at h (off by 0.09)
    torch.testing.assert_close(unit_effects(model, x, "stem", target=0, method="attribution", use_suffix=False), want)
    compiled = _Stem(compiled=True).double().eval()
    torch.testing.assert_close(unit_effects(compiled, x, "stem", target=0, method="attribution"), want)


class _Quantized(nn.Module):
    def __init__(self):
        super().__init__()
        import torch.ao.quantization as quantization

        torch.manual_seed(0)
        self.quant, self.dequant = quantization.QuantStub(), quantization.DeQuantStub()
        self.fc1, self.act, self.fc2 = nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)

    def forward(self, x):
        return self.dequant(self.fc2(self.act(self.fc1(self.quant(x)))))


def test_quantization_aware_layers_stay_in_the_layer_map_default_layers():
    import warnings

    import pytest
    import torch.ao.quantization as quantization

    model = _Quantized().train()
    model.qconfig = quantization.get_default_qat_qconfig("fbgemm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantization.prepare_qat(model, inplace=True)  # fc1, fc2 gain weight_fake_quant / activation_post_process
    x = torch.randn(10, 6, generator=torch.Generator().manual_seed(0))
    model(x)
    model.eval()
    # before: no leaf layer (fc1 and fc2 hold fake-quant submodules), and the error blamed `layers`, never passed
    assert leaf_layers(model) == ["fc1", "fc2"]
    assert layer_causal_map(model, x).layers == ["fc1", "fc2"]
    with pytest.raises(ValueError, match=r"holds none; name the layers with `layers=`"):
        layer_causal_map(nn.Sequential(nn.Flatten(), nn.ReLU()), x)


def test_the_attribution_estimate_takes_a_parametrized_layer_as_the_layer_that_mixes_units():
    from lightning_causal.causal import unit_effects

    x = torch.randn(8, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    for wrap in (parametrizations.weight_norm, lambda m: parametrize.register_parametrization(m, "weight", _Double())):
        model = _mlp()
        wrap(model[2])  # its `parametrizations` are submodules, but it is a layer, not a container
        with torch.no_grad():
            twin = _mlp()
            twin[2].weight.copy_(model[2].weight)
        for path in (True, False):
            torch.testing.assert_close(unit_effects(model, x, "0", target=1, method="attribution", use_suffix=path),
                                       unit_effects(twin, x, "0", target=1, method="attribution", use_suffix=path))

