"""input_effects of inputs that mix integer codes and floats, ``(cat, num)``, with one tensor baseline for both: the
refusal showed the baseline as its repr cut at 80 characters (``tensor([[0.2172, 0.6673, ...`` over two lines, cut
mid-number), where the other refusals of a baseline show a tensor by its dtype and shape (shown_baseline)."""

import re

import pytest
import torch

from lightning_causal.causal.engine.ablation import check_baselines

CAT, NUM = torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 5)


def test_a_tensor_baseline_of_mixed_inputs_is_shown_by_its_dtype_and_shape():
    with pytest.raises(ValueError) as err:
        check_baselines((CAT, NUM), torch.rand(4, 3, generator=torch.Generator().manual_seed(0)))
    message = str(err.value)
    assert "but got a torch.float32 tensor [4, 3]; the inputs mix integer codes and floats" in message
    assert "\n" not in message and "tensor([" not in message


def test_a_scalar_baseline_of_mixed_inputs_is_shown_as_given():
    for b, shown in ((0.5, "0.5"), (0.0, "0.0"), (torch.tensor(0.25), "tensor(0.2500)")):
        with pytest.raises(ValueError, match=rf"but got {re.escape(shown)}; the inputs mix integer codes and floats"):
            check_baselines((CAT, NUM), b)
