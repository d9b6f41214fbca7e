"""The reference models' training helper: reproducible from the seed alone, global RNG untouched."""

import pytest
import torch
from torch import nn

from lightning_causal.models import DigitsCNN, fit_classifier, load_digits_tensors


def _separable(n: int = 64):
    x = torch.randn(n, 2, generator=torch.Generator().manual_seed(0))
    return x, (x[:, 0] > 0).long()


def test_fit_classifier_same_seed_same_weights_other_seed_other_weights_and_global_rng_untouched():
    x, y = _separable()
    torch.manual_seed(5)
    lin = nn.Linear(2, 2)  # its default initialisation draws from the global RNG: before the snapshot
    before = torch.random.get_rng_state()
    a = fit_classifier(lin, x, y, epochs=3, seed=1)
    assert torch.equal(torch.random.get_rng_state(), before)
    torch.manual_seed(99)  # a different global state must not matter
    b = fit_classifier(nn.Linear(2, 2), x, y, epochs=3, seed=1)
    c = fit_classifier(nn.Linear(2, 2), x, y, epochs=3, seed=2)
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    assert not torch.equal(a.weight, c.weight)
    assert not a.training and a.weight.grad is None


def test_fit_classifier_reinit_draws_fan_in_uniform_and_reinit_false_keeps_the_start():
    x, y = _separable()
    lin = fit_classifier(nn.Linear(3, 2), x.repeat(1, 2)[:, :3], y, epochs=0, seed=0)
    g = torch.Generator().manual_seed(0)  # weight then bias, U(-1, 1) / sqrt(fan_in): fan_in 3 and 1
    weight = torch.empty(2, 3).uniform_(-1, 1, generator=g) / 3**0.5
    bias = torch.empty(2).uniform_(-1, 1, generator=g)
    assert torch.allclose(lin.weight, weight) and torch.allclose(lin.bias, bias)
    start = nn.Linear(2, 2)
    w0 = start.weight.detach().clone()
    kept = fit_classifier(start, x, y, epochs=0, seed=0, reinit=False)
    assert torch.equal(kept.weight, w0)


def test_fit_classifier_learns_digits():
    xt, yt, xv, yv = load_digits_tensors()
    model = fit_classifier(DigitsCNN(), xt, yt, epochs=10, seed=0)
    with torch.no_grad():
        acc = float((model(xv).argmax(1) == yv).float().mean())
    assert acc > 0.9


@pytest.mark.parametrize(("kwargs", "match"), [({"epochs": -1}, "epochs"), ({"epochs": 1.5}, "epochs"),
                                               ({"epochs": 1, "batch_size": 0}, "batch_size")])
def test_fit_classifier_rejects_bad_arguments(kwargs, match):
    x, y = _separable()
    with pytest.raises(ValueError, match=match):
        fit_classifier(nn.Linear(2, 2), x, y, **kwargs)


def test_fit_classifier_rejects_mismatched_lengths():
    x, y = _separable()
    with pytest.raises(ValueError, match="same length"):
        fit_classifier(nn.Linear(2, 2), x, y[:-1], epochs=1)
