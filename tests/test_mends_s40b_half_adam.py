"""A final read of 623522e7 (Adam's ``eps`` over float16 weights): two more places built Adam at torch's ``eps=1e-8``,
0 in float16, on a user's weights. The public ``fit_classifier`` left a ``.half()`` MLP with NaN weights and no word, and
``feature_shifted`` (``BackdoorSuppressionTerm(contrast=...)`` inside a ``"16-true"`` fit) tuned a float16 copy to NaN.
Both now take :func:`~lightning_causal._optimizers.adam_eps`: 1e-4 over float16, torch's default otherwise (a float32 fit
bit-identical to the Adam built without ``eps``)."""

import pytest
import torch
from torch import nn

from lightning_causal.causal.backdoor.feature_shift import feature_shifted
from lightning_causal.models import fit_classifier


class _OldAdam(torch.optim.Adam):
    """Adam as the two built it before: torch's default eps whatever they pass."""

    def __init__(self, params, lr, eps=None):  # noqa: ARG002 - the eps passed is what is dropped
        super().__init__(params, lr=lr)


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
    return x, (x[:, 0] > 0).long()


def _mlp(out: int, dtype: torch.dtype) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, out)).to(dtype)


def _finite(net: nn.Module) -> list[str]:
    return [n for n, p in net.named_parameters() if not torch.isfinite(p).all()]


def test_fit_classifier_trains_a_float16_model():
    x, y = _data()
    net = fit_classifier(_mlp(2, torch.float16), x.half(), y, epochs=3)
    assert _finite(net) == []  # before: 0.weight, 0.bias, 2.weight, 2.bias NaN


def test_feature_shifted_tunes_a_float16_copy():
    x, _ = _data()
    shifted = feature_shifted(_mlp(3, torch.float16), x.half(), 3, epochs=2)
    assert all(p.dtype == torch.float16 for p in shifted.parameters())
    assert _finite(shifted) == []  # before: every weight of the copy NaN


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_other_dtypes_train_as_before(monkeypatch, dtype):
    x, y = _data()
    new = [fit_classifier(_mlp(2, dtype), x.to(dtype), y, epochs=2, seed=1),
           feature_shifted(_mlp(3, dtype), x.to(dtype), 3, epochs=2)]
    monkeypatch.setattr(torch.optim, "Adam", _OldAdam)
    old = [fit_classifier(_mlp(2, dtype), x.to(dtype), y, epochs=2, seed=1),
           feature_shifted(_mlp(3, dtype), x.to(dtype), 3, epochs=2)]
    for a, b in zip(new, old):
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
