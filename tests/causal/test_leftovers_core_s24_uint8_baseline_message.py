"""A float, complex or bool baseline for uint8 images was refused with the token ids' message ("an integer (a token
id)", [MASK] and GPT-2 advice, a multi-line tensor repr); a bool tensor (a mask meant as 'black') read as though the
user had tokens. The refusal names what a uint8 input takes: an int in [0, 255] or an integer tensor of such values
broadcastable to the input, then the baseline given (a tensor by its dtype and shape)."""

import re

import pytest
import torch

from lightning_causal.causal.engine.ablation import check_baselines

_TAKES = (r"Expected argument `baseline` to be an int in \[0, 255\] or an integer \(e.g. torch.uint8\) tensor of such values "
          r"broadcastable to the input \[2, 3, 4, 4\] for inputs of dtype torch.uint8 but got ")


@pytest.mark.parametrize(("baseline", "shown"), [
    (torch.zeros(1, 3, 1, 1, dtype=torch.bool), r"a torch.bool tensor \[1, 3, 1, 1\] \(False and True are the baselines of bool "),
    (torch.tensor(True), r"tensor\(True\) \(False and True"),
    (torch.full((3, 1, 1), 0.5), r"a torch.float32 tensor \[3, 1, 1\]: "),
    (0.0, r"0.0, the default for float inputs: "),
])
def test_a_uint8_image_refuses_a_non_integer_baseline_naming_what_it_takes(baseline, shown):
    x = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    with pytest.raises(ValueError, match=_TAKES + shown) as err:
        check_baselines((x,), baseline)
    message = str(err.value)
    assert "a pixel value, e.g. `baseline=0` (black)" in message
    assert "token id)" not in message and "\n" not in message


def test_int16_samples_name_their_range_and_token_ids_keep_their_message():
    with pytest.raises(ValueError, match=re.escape("an int in [-32768, 32767]") + r".*\(PCM audio\), a raw value"):
        check_baselines((torch.zeros(2, 3, dtype=torch.int16),), torch.zeros(3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"to be an integer \(a token id\) for integer inputs of dtype torch.int64 .*\[MASK\]"):
        check_baselines((torch.zeros(2, 3, dtype=torch.long),), torch.zeros(3, dtype=torch.bool))


def test_integer_baselines_of_a_uint8_image_are_still_taken():
    x = torch.zeros(2, 3, 4, 4, dtype=torch.uint8)
    assert check_baselines((x,), 128)[0].tolist() == [[[[128]]]]
    reference = torch.arange(3, dtype=torch.int64).view(3, 1, 1)
    assert check_baselines((x,), reference)[0].dtype == torch.uint8
