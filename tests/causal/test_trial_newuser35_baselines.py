"""Trial newuser35: baselines of uint8 images, bool masks and complex signals. A bool mask refused
``baseline=False`` ("a number or a tensor but got bool") and its default 0.0 as "an integer (a token id)",
while ``baseline=2`` silently became True; a uint8 image's ``baseline=-1`` silently became 255 (a cast
wraps) and 300 raised torch's "value cannot be converted to type uint8 without overflow"; the attribution
method told uint8 pixels and complex frames that "token ids have no gradient"."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects


class _Pixels(nn.Module):  # normalises inside, as a uint8 image model does
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(6, 2)

    def forward(self, x):
        return self.fc(x.float() / 255)


class _Mask(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(5, 2)

    def forward(self, m):
        return self.fc(m.float())


def _mask():
    return torch.tensor([[True, False, True, True, False], [False, False, True, False, True]])


@pytest.mark.parametrize("baseline", [False, 0, 0.0, torch.tensor(False), torch.zeros(5, dtype=torch.bool)])
def test_a_bool_mask_takes_false_as_its_baseline(baseline):
    model, m = _Mask(), _mask()
    got = input_effects(model, m, baseline=baseline, target=1)
    torch.testing.assert_close(got, m.float() * model.fc.weight[1].detach())  # switching a bit off drops its weight


def test_a_bool_mask_takes_true_as_its_baseline():
    model, m = _Mask(), _mask()
    got = input_effects(model, m, baseline=True, target=1)
    torch.testing.assert_close(got, (m.float() - 1) * model.fc.weight[1].detach())


@pytest.mark.parametrize("baseline", [2, -1, 0.5, torch.tensor([0, 2, 0, 0, 0])])
def test_a_bool_mask_refuses_a_baseline_the_cast_would_make_true(baseline):
    with pytest.raises(ValueError, match=r"`baseline` to be False or True \(0 or 1\) for bool inputs \(masks\) but got"):
        input_effects(_Mask(), _mask(), baseline=baseline, target=1)


@pytest.mark.parametrize("baseline", [-1, 256, torch.tensor([0, 0, 300, 0, 0, 0])])
def test_a_uint8_baseline_outside_0_255_is_refused(baseline):
    x = torch.tensor([[0, 50, 100, 150, 200, 250]], dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"`baseline` to fit the inputs' dtype torch.uint8 \(\[0, 255\]\) but got (-1|256|300)"):
        input_effects(_Pixels(), x, baseline=baseline, target=1)


def test_a_uint8_image_gets_the_effects_of_its_float_equal():
    model, x = _Pixels(), torch.tensor([[0, 50, 100, 150, 200, 250], [255, 1, 2, 3, 4, 5]], dtype=torch.uint8)
    got = input_effects(model, x, baseline=0, target=1)
    torch.testing.assert_close(got, x.float() / 255 * model.fc.weight[1].detach())
    with pytest.raises(ValueError, match=r"for uint8 images \(pixels 0..255 the model scales inside\), a pixel value, e.g. `baseline=0`"):
        input_effects(model, x, target=1)  # the float default 0.0


@pytest.mark.parametrize(("x", "says"), [
    (torch.zeros(2, 6, dtype=torch.uint8), r"dtype torch.uint8 \(uint8 pixels or bool masks .*pass inputs.float\(\)"),
    # complex inputs: estimated since fixes_engine_s24 (Re(conj(grad) (z - b)), tests/causal/test_fixes_engine_s24.py)
])
def test_the_attribution_method_names_the_dtype_and_the_way(x, says):
    model = _Pixels() if not x.is_complex() else nn.Sequential(nn.Flatten(), _Abs(), nn.Linear(6, 2))
    with pytest.raises(TypeError, match=r"`inputs` for method='attribution' but got " + says):
        input_effects(model, x, baseline=0, target=1, method="attribution")


class _Abs(nn.Module):
    def forward(self, z):
        return z.abs()


def test_complex_frames_get_the_effect_of_zeroing_each_bin():
    """A signal model reading |z| of complex STFT frames: baseline 0 (0+0j) removes a bin; the effect is real."""
    torch.manual_seed(0)
    lin = nn.Linear(6, 2)
    model = nn.Sequential(nn.Flatten(), _Abs(), lin).eval()
    z = torch.randn(3, 2, 3, dtype=torch.complex64)
    got = input_effects(model, z, target=1)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, z.abs().flatten(1) * lin.weight[1].detach())


def test_complex_frames_take_a_complex_baseline_and_refuse_a_nan_one():
    """A complex number was refused as 'a number or a tensor but got complex'; a NaN complex baseline gave NaN
    effects silently (a NaN float baseline is refused)."""
    torch.manual_seed(0)
    lin = nn.Linear(6, 2)
    model = nn.Sequential(nn.Flatten(), _Abs(), lin).eval()
    z = torch.randn(3, 2, 3, dtype=torch.complex64)
    got = input_effects(model, z, baseline=3 + 4j, target=1)  # |3 + 4j| = 5
    torch.testing.assert_close(got, (z.abs().flatten(1) - 5) * lin.weight[1].detach())
    with pytest.raises(ValueError, match=r"`baseline` to be finite but it holds NaN"):
        input_effects(model, z, baseline=torch.tensor(complex("nan")), target=1)


@pytest.mark.parametrize(("baseline", "says"), [(1j, r"but got complex \(complex baselines are for complex inputs; these are torch.float32\)"),
                                                 (torch.tensor(1 + 1j), r"real for inputs of dtype torch.float32, but got a complex tensor")])
def test_real_inputs_refuse_a_complex_baseline_whose_imaginary_part_would_be_dropped(baseline, says):
    with pytest.raises(TypeError, match=says):
        input_effects(nn.Linear(4, 2), torch.randn(3, 4), baseline=baseline, target=1)


def test_int16_audio_is_told_a_raw_value_and_gets_the_effects_of_its_float_equal():
    """A PCM waveform (int16, the model scales by 1/32768) was told only about token ids and codes."""
    torch.manual_seed(0)
    lin = nn.Linear(4, 2)

    class Pcm(nn.Module):
        def forward(self, x):
            return lin(x.float() / 32768)

    x = torch.tensor([[-32768, -5, 7, 32767], [100, -100, 0, 1]], dtype=torch.int16)
    with pytest.raises(ValueError, match=r"for int16 or int8 samples that the model scales inside \(PCM audio\), a raw value"):
        input_effects(Pcm(), x, target=1)
    torch.testing.assert_close(input_effects(Pcm(), x, baseline=0, target=1), x.float() / 32768 * lin.weight[1].detach())
