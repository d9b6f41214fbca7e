"""CaptumBaseline on int16 samples (PCM audio that the model casts inside) was told they were token ids: a
per-sample reference (an integer tensor) was refused as "a token id (an int: pad or [MASK])" and a gradient method
got the advice to use layer methods on BERT's embeddings. No embedding takes int8/int16 as indices (only int64 and
int32, ``token_ids.INDEX_DTYPES``): they are values, as uint8 pixels are."""

import pytest
import torch
from torch import nn

from lightning_causal import CaptumBaseline
from lightning_causal.audits import Probe


class _Pcm(nn.Module):  # int16 samples read as floats in [-1, 1), a linear score per class
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 2, bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[0.0] * 6, [1.0, -2.0, 3.0, 0.5, 0.0, 1.5]]))

    def forward(self, x):
        return self.fc(x.float() / 32768)


def _samples(dtype: torch.dtype = torch.int16) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(-100, 100, (8, 6), generator=g).to(dtype)


@pytest.mark.parametrize("dtype", [torch.int16, torch.int8])
def test_a_per_sample_reference_of_int_samples_is_taken_value_by_value(dtype):
    x = _samples(dtype)
    reference = torch.tensor([[5, -5, 10, 0, 3, -3]], dtype=dtype)
    model = _Pcm().eval()
    r = CaptumBaseline(("FeatureAblation",), baseline=reference, target=1).run(model, Probe(x))
    want = (x.float() - reference.float()) * model.fc.weight[1].detach() / 32768  # w_j (x_j − b_j) / 32768
    assert torch.allclose(r.maps["causal"].float(), want, atol=1e-7)
    assert r.scalars["compare/FeatureAblation/spearman"] == pytest.approx(1.0)


def test_gradient_methods_on_int16_samples_are_told_to_read_floats_not_embeddings():
    with pytest.raises(ValueError, match=r"perturbation methods for torch.int16 inputs .*int8/int16 samples") as err:
        CaptumBaseline(("IntegratedGradients",), baseline=0, target=1).run(_Pcm().eval(), Probe(_samples()))
    assert "embeddings" not in str(err.value) and "batch[0].float()" in str(err.value)
    assert "x.float() / 32768 of int16 samples, reads them the same" in str(err.value)  # not only pixels' / 255


def test_int64_columns_are_still_token_ids():
    with pytest.raises(ValueError, match=r"token id \(an int: pad or \[MASK\]\)"):
        CaptumBaseline(("FeatureAblation",), baseline=torch.zeros(1, 6, dtype=torch.long) + 1, target=1).run(
            _Pcm().eval(), Probe(_samples(torch.int64)))
