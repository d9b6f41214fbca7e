"""Neural Cleanse on float64, bfloat16 and float16 models: the triggers are optimised in at least
float32 and stamped in the model's dtype, so they match the float32 model's to that dtype's rounding."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import mad_anomaly_index, neural_cleanse
from lightning_causal.causal.backdoor.reverse import reverse_trigger

X = torch.rand(24, 1, 4, 4, generator=torch.Generator().manual_seed(1))
# the largest difference of a mask entry from the float32 model's: the model's own rounding
TOLERANCE = {torch.float64: 1e-6, torch.bfloat16: 0.02, torch.float16: 0.002}


# every dtype on every supported torch: the trigger search takes the cross-entropy of low-precision logits in float32
# (torch 2.3 has no float16 cross_entropy on the CPU: '"nll_loss_out_frame" not implemented for 'Half'')
DTYPES = [torch.float64, torch.bfloat16, torch.float16]


def _model(dtype: torch.dtype) -> nn.Module:
    torch.manual_seed(1)  # X's predictions: classes 1 and 2 (22 and 2), so each class has inputs to move
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3)).to(dtype).eval()


@pytest.mark.parametrize("dtype", DTYPES)
def test_neural_cleanse_of_another_dtype_matches_the_float32_model(dtype):
    # before: the best mask norm was a float32 buffer ('Index put requires the source and destination dtypes
    # match' for float64/bf16/fp16), and float16 parameters under Adam (eps 1e-8 = 0) turned into NaN
    ref = neural_cleanse(_model(torch.float32), X, 3, steps=6, batch_size=8)
    res = neural_cleanse(_model(dtype), X.to(dtype), 3, steps=6, batch_size=8)
    masks = torch.stack([t.mask for t in res.triggers])
    assert masks.dtype == dtype
    assert (masks.double() - torch.stack([t.mask for t in ref.triggers]).double()).abs().max() <= TOLERANCE[dtype]
    norms = masks.flatten(1).double().sum(1)  # the norms of the returned masks, in at least float32
    assert torch.allclose(res.mask_norms.double(), norms, rtol=1e-6 if dtype != torch.float64 else 1e-12)
    assert res.unattacked == ref.unattacked == []  # the index of all 3 norms (seed 0's model put every input in class 0)
    assert torch.allclose(res.anomaly_index.double(), mad_anomaly_index(res.mask_norms).double(), atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_reverse_trigger_of_another_dtype_matches_the_float32_model(dtype):
    ref = reverse_trigger(_model(torch.float32), X, 1, steps=6, batch_size=8)
    got = reverse_trigger(_model(dtype), X.to(dtype), 1, steps=6, batch_size=8)
    assert got.mask.dtype == dtype and bool(torch.isfinite(got.mask).all())
    assert (got.mask.double() - ref.mask.double()).abs().max() <= TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_the_trigger_search_takes_the_cross_entropy_of_low_precision_logits_in_float32(dtype, monkeypatch):
    seen = []
    cross_entropy = torch.nn.functional.cross_entropy

    def recording(logits, *args, **kwargs):
        seen.append(logits.dtype)
        return cross_entropy(logits, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "cross_entropy", recording)
    neural_cleanse(_model(dtype), X.to(dtype), 3, steps=2, batch_size=8)
    assert seen and set(seen) == {torch.float32}
