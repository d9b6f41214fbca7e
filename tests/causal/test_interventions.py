import pytest
import torch
from torch import nn

from lightning_causal.causal import MeanOf, Resample, Scale, SetTo, Zero, capture, intervene
from lightning_causal.causal.engine.interventions import resolve_module
from tests.helpers.models import DigitsCNN, all_hook_counts, seeded


def _net():
    return seeded(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)))


def test_zero_setto_scale_values():
    h = torch.arange(6.0).view(2, 3)
    assert torch.equal(Zero(units=[0, 2])(h), torch.tensor([[0.0, 1.0, 0.0], [0.0, 4.0, 0.0]]))
    assert torch.equal(SetTo(torch.tensor([7.0, 8.0, 9.0]))(h), torch.tensor([[7.0, 8.0, 9.0]] * 2))
    assert torch.equal(Scale(-1.0, units=1)(h), torch.tensor([[0.0, -1.0, 2.0], [3.0, -4.0, 5.0]]))


def test_conv_channel_selection():
    h = torch.ones(2, 3, 4, 4)
    out = SetTo(5.0, units=[1])(h)
    assert torch.all(out[:, 1] == 5.0) and torch.all(out[:, [0, 2]] == 1.0)


def test_mean_of_and_resample():
    ref = torch.tensor([[1.0, 10.0], [3.0, 30.0]])
    assert torch.equal(MeanOf(ref, units=1)(torch.zeros(1, 2)), torch.tensor([[0.0, 20.0]]))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a = Resample(ref, g1)(torch.zeros(50, 2))
    b = Resample(ref, g2)(torch.zeros(50, 2))
    assert torch.equal(a, b)  # same generator seed -> same draw
    assert set(map(tuple, a.tolist())) == {(1.0, 10.0), (3.0, 30.0)}  # only reference rows


def test_resample_does_not_touch_global_rng():
    state = torch.get_rng_state()
    Resample(torch.randn(5, 2, generator=torch.Generator().manual_seed(0)))(torch.zeros(4, 2))
    assert torch.equal(state, torch.get_rng_state())


def test_intervene_changes_output_and_removes_hooks():
    net = _net()
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    with intervene(net, {"1": Zero()}):
        out = net(x)
    assert torch.allclose(out, net[2].bias.expand(5, 2))
    assert all_hook_counts(net) == 0
    assert not torch.allclose(net(x), out)


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_hooks_removed_on_exception(exc):
    net = _net()
    with pytest.raises(exc):
        with intervene(net, {"0": Zero(), "1": Scale(2.0)}):
            raise exc("boom")
    assert all_hook_counts(net) == 0


def test_hooks_removed_when_forward_raises():
    net = _net()
    with pytest.raises(ValueError, match="units"):
        with intervene(net, {"0": Zero(units=[9])}):
            net(torch.zeros(1, 3))
    assert all_hook_counts(net) == 0


def test_other_hooks_untouched():
    net = _net()
    calls = []
    handle = net[0].register_forward_hook(lambda *a: calls.append(1))
    with intervene(net, {"0": Zero()}):
        net(torch.zeros(1, 3))
    net(torch.zeros(1, 3))
    assert len(calls) == 2 and len(net[0]._forward_hooks) == 1
    handle.remove()


def test_capture_records_and_cleans_up():
    model = DigitsCNN()
    with capture(model, ["conv2", "fc1"]) as acts:
        model(torch.zeros(3, 1, 8, 8))
    assert acts["conv2"].shape == (3, 32, 4, 4) and acts["fc1"].shape == (3, 64)
    assert all_hook_counts(model) == 0


def test_unknown_module_lists_close_matches():
    with pytest.raises(ValueError, match=r"close matches: \['conv1'"):
        resolve_module(DigitsCNN(), "conv_1")
    with pytest.raises(ValueError, match="Unknown module name"):
        with intervene(DigitsCNN(), {"nope": Zero()}):
            pass


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: Zero(units=[-1]), "units"),
        (lambda: Zero(units=[]), "units"),
        (lambda: Zero(units=[1.5]), "units"),
        (lambda: SetTo(float("nan")), "finite"),
        (lambda: SetTo("a"), "number or a tensor"),
        (lambda: Scale(float("inf")), "factor"),
        (lambda: MeanOf(torch.zeros(0, 2)), "reference"),
        (lambda: MeanOf(torch.tensor([[float("nan"), 1.0]])), "finite"),
        (lambda: Resample(torch.zeros(2, 2), generator=1), "generator"),
    ],
)
def test_constructor_checks(factory, match):
    with pytest.raises((ValueError, TypeError), match=match):
        factory()


def test_shape_mismatch_is_clear():
    with pytest.raises(ValueError, match="value"):
        SetTo(torch.ones(5))(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="reference"):
        Resample(torch.zeros(2, 4))(torch.zeros(2, 3))


def test_intervene_rejects_non_interventions():
    with pytest.raises(TypeError, match="Intervention"):
        with intervene(_net(), {"0": 0.0}):
            pass


def test_a_site_that_never_runs_is_named_in_a_warning_once():
    """The out_proj of nn.MultiheadAttention never runs as a module: intervene and capture on it
    silently did nothing."""
    import warnings

    from lightning_causal.causal import Zero, capture, intervene

    torch.manual_seed(0)
    model = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 1).eval()
    x = torch.randn(2, 3, 8)
    for context in (lambda: intervene(model, {"layers.0.self_attn.out_proj": Zero()}),
                    lambda: capture(model, ["layers.0.self_attn.out_proj"])):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with context():
                model(x)
                model(x)
        assert [str(w.message) for w in caught if "did not run" in str(w.message)] == [
            caught[0].message.args[0]] and "'layers.0.self_attn.out_proj'" in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with intervene(model, {"layers.0.linear1": Zero()}), capture(model, ["layers.0"]):
            model(x)


class _Codes(nn.Module):
    """Category codes ``[N, 2]`` pass ``codes`` (an identity) into one embedding with offsets."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.codes, self.emb, self.head = nn.Identity(), nn.Embedding(7, 2), nn.Linear(4, 1)
        self.register_buffer("offsets", torch.tensor([0, 4]))

    def forward(self, codes):
        return self.head(self.emb(self.codes(codes) + self.offsets).flatten(1))


@pytest.mark.parametrize("iv, match", [
    (MeanOf(torch.tensor([[0, 1], [3, 2]]), units=0), r"MeanOf.*dtype torch.int64.*their mean, e.g. 1.5, is no code"),
    (SetTo(1.5, units=0), r"SetTo\(1.5.*gives 1.5, which would be truncated to 1"),
    (Scale(0.5, units=0), r"Scale.*gives 1.5, which would be truncated to 1"),
])
def test_fractional_values_at_an_integer_site_are_refused(iv, match):
    """On category codes, MeanOf (mean code 1.5), SetTo(1.5) and Scale(0.5) (3 -> 1.5) were cast to
    int64 and fed code 1, silently: the effect of another intervention."""
    model, codes = _Codes(), torch.tensor([[3, 1], [2, 0]])
    with pytest.raises(ValueError, match=match), intervene(model, {"codes": iv}):
        model(codes)
    assert all_hook_counts(model) == 0


def test_integer_values_at_an_integer_site_equal_editing_the_codes():
    model, codes = _Codes(), torch.tensor([[3, 1], [2, 0]])
    reference = torch.tensor([[1, 2], [0, 2]])
    with torch.no_grad():
        for iv, column in [(SetTo(2, units=0), torch.tensor([2, 2])), (SetTo(torch.tensor([1.0, 2.0])), None)]:
            with intervene(model, {"codes": iv}):
                got = model(codes)
            edited = codes.clone()
            if column is None:
                edited[:] = torch.tensor([1, 2])
            else:
                edited[:, 0] = column
            torch.testing.assert_close(got, model(edited), rtol=0, atol=0)
        drawn = Resample(reference, torch.Generator().manual_seed(3), units=1)
        with intervene(model, {"codes": drawn}):
            got = model(codes)
        rows = torch.randint(2, (2,), generator=torch.Generator().manual_seed(3))
        edited = codes.clone()
        edited[:, 1] = reference[rows, 1]
        torch.testing.assert_close(got, model(edited), rtol=0, atol=0)


def test_shape_errors_of_values_and_references_list_each_allowed_shape_once():
    # SetTo read "a scalar, [6] (one value per unit), [6] or [6]" and Resample "[M, [6]]"
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    x = torch.randn(5, 4)
    with pytest.raises(ValueError) as err, intervene(model, {"1": SetTo(torch.ones(5))}):
        model(x)
    assert str(err.value) == ("Expected argument `value` to be a scalar or of shape [6] (one value per unit) for an "
                              "output of shape [5, 6] but got shape [5]")
    with pytest.raises(ValueError, match=r"`reference` to be activations of shape \[M, 6\] \(the module's output "
                                         r"without its first dimension\) but got \[10, 5\]"):
        with intervene(model, {"1": Resample(torch.randn(10, 5))}):
            model(x)
    with pytest.raises(ValueError, match=r"shape \[2\] \(one value per unit\) or \[4\] \(one per position of the unit "
                                         r"dimension\) or \[5, 4\] \(one sample's shape\) for an output of shape \[1, 5, 4\]"):
        SetTo(torch.ones(3), num_heads=2)(torch.zeros(1, 5, 4))


def test_a_layer_that_is_not_a_string_is_refused_with_its_value_and_example_names():
    # it read "Expected a module name (str) but got <class 'list'>" for suspect_units(..., ["2"])
    from lightning_causal.causal import unit_effects

    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    with pytest.raises(TypeError, match=r"one module name \(str\), e.g. one of \['0', '1', '2'\], but got list \['1'\]"):
        unit_effects(model, torch.randn(3, 4), ["1"])
    with pytest.raises(TypeError, match=r"but got int 1$"):
        resolve_module(model, 1)
