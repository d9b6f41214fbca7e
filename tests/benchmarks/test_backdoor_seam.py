"""``benchmarks/backdoor_seam.py`` (a development-set study, issue 17): its method names are checked before a run, its
forgetting phase trains on labels that carry nothing of the true ones, and its recovery is the protocol's loop."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from benchmarks import backdoor_peers as peers
from benchmarks import backdoor_seam as seam


def test_method_names_parse_and_refuse_with_the_form():
    assert seam.method_parts("seam:3:0.004:20:0.004") == (3, 0.004, 20, 0.004, 0.0)
    assert seam.method_parts("seam:0:1e-2:40:4e-3:kd1.5") == (0, 0.01, 40, 0.004, 1.5)
    for bad in ("seam:3:0.004:20", "seam:3:0.004:0:0.004", "seam:3:0:20:0.004", "seam:3:0.004:20:0.004:k1",
                "seam:3:0.004:20:0.004:kd-1", "sam:3:0.004:20:0.004", "seam:x:0.004:20:0.004"):
        with pytest.raises(ValueError, match=rf"seam:<forget_epochs>.*{bad!r}"):
            seam.method_parts(bad)


def test_random_labels_are_fixed_by_the_seed_and_ignore_the_true_ones():
    y = torch.arange(600) % 10
    a, b = seam.random_labels(y, 10, 7), seam.random_labels(torch.zeros_like(y), 10, 7)
    assert torch.equal(a, b) and a.shape == y.shape and a.min() >= 0 and a.max() <= 9
    assert not torch.equal(a, seam.random_labels(y, 10, 8))
    assert (a == y).float().mean() < 0.2  # chance is 0.1: no hold on the true labels
    assert torch.bincount(a, minlength=10).min() > 30  # every class drawn


def _task(seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(144, 1, 8, 8, generator=g)
    w = torch.randn(64, 10, generator=g)
    return x, (x.flatten(1) @ w).argmax(1)


def _model(x, y) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    return peers.repair_with_terms(model, [], x, y, 30, 0, lr=1e-2)


def test_forgetting_then_recovery_and_the_model_left_untouched():
    x, y = _task(1)
    model = _model(x, y)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        before = (model(x).argmax(1) == y).float().mean().item()
    repaired, forgotten = seam.seam(model, x, y, 3, 1e-2, 20, 4e-3, seed=0)
    with torch.no_grad():
        assert before > 0.9 and (forgotten(x).argmax(1) == y).float().mean() < before - 0.3  # the mapping wiped
        assert (repaired(x).argmax(1) == y).float().mean().item() > 0.9  # and the true labels brought it back
    assert not repaired.training and not forgotten.training and model not in (repaired, forgotten)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    # no forgetting epochs: the recovery alone, i.e. the protocol's plain fine-tuning from the seed SEAM gives it
    plain, _ = seam.seam(model, x, y, 0, 1e-2, 5, 4e-3, seed=0)
    ft = peers.repair_with_terms(model, [], x, y, 5, 7, lr=4e-3)
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), ft.state_dict().values()))


def test_kd_loss_is_zero_on_the_reference_and_pulls_towards_it():
    x, y = _task(2)
    ref = _model(x, y).eval()
    assert seam.kd_loss(ref, 2.0)(ref, x, y).abs() < 1e-6
    other = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    assert seam.kd_loss(ref, 2.0)(other, x, y) > 2 * seam.kd_loss(ref, 1.0)(other, x, y) * 0.999
    recovered, _ = seam.seam(ref, x, y, 3, 1e-2, 20, 4e-3, seed=0, kd=1.0)
    plain, _ = seam.seam(ref, x, y, 3, 1e-2, 20, 4e-3, seed=0)
    with torch.no_grad():
        gap = lambda m: (m(x).log_softmax(1) - ref(x).log_softmax(1)).abs().mean()  # noqa: E731
        assert gap(recovered) < gap(plain)
