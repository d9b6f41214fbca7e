"""Review of 8368df38: ``same_outputs`` widened both outputs to float64 and then read the tolerance's ulps off the
widened dtype, so half and bfloat16 outputs lost their 16 ulps (the docstring's "16 ulps for half precision") and were
held to 1%: a bfloat16 model's batch-size rounding of 4 ulps read as a model that depends on its batch."""

from __future__ import annotations

import pytest
import torch

from lightning_causal.causal.engine.sample_independence import same_outputs


@pytest.mark.parametrize(("dtype", "other"), [(torch.bfloat16, 2.0625), (torch.float16, 2.0390625)],
                         ids=["bfloat16", "float16"])
def test_half_precision_keeps_its_16_ulps(dtype, other):
    # bfloat16: 2.0625 is 4 ulps (2**-6) above 2; tolerance 16 * 2**-7 = 0.125 of the scale 1 + 2.0625 (0.383),
    # 1% would be 0.0306. float16: 2.0390625 is 20 ulps (2**-9) above 2, 0.0391; 16 * 2**-10 of 3.039 is 0.0475, 1% 0.0304
    a, b = torch.tensor([1.0, 2.0], dtype=dtype), torch.tensor([1.0, other], dtype=dtype)
    assert same_outputs(a, b) == (other - 2.0, True)


def test_float32_keeps_one_percent():
    assert same_outputs(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0625])) == (0.0625, False)  # 1% of 3.0625: 0.0306
    # float16 beyond its 16 ulps: 2.0625 against 2 is 0.0625 > 0.0156 * 3.0625
    assert same_outputs(torch.tensor([1.0, 2.0], dtype=torch.float16),
                        torch.tensor([1.0, 2.0625], dtype=torch.float16)) == (0.0625, False)
