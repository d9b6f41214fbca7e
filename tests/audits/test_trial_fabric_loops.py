"""Audits, estimators and repair terms in a Lightning Fabric loop (no Trainer): audits between epochs
change nothing the loop sees (same seed, bit-identical weights, optimizer state, BatchNorm statistics and
RNG streams), the numbers of the unwrapped module equal a float64 do-loop written with forward hooks, the
Fabric wrapper's own results equal the module's at full precision, and a repair term is an ordinary loss
term for ``fabric.backward``."""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import (
    CounterfactualAudit,
    CounterfactualFairnessTerm,
    InputEffectAudit,
    UnitImportanceAudit,
)
from lightning_causal._compat import is_autocast_enabled  # with a device type on torch < 2.4 too
from lightning_causal.audits import Probe
from lightning_causal.causal import AttributeFlip, unit_effects

fabric_module = pytest.importorskip("lightning.fabric")
Fabric = fabric_module.Fabric


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(192, 4, generator=g)
    x[:, 0] = (x[:, 0] > 0).float()  # a binary column for the fairness term
    return x, (x[:, 1] + 0.5 * x[:, 0] - x[:, 2] > 0).long()


def _model() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.25), nn.Linear(16, 8),
                         nn.ReLU(), nn.Linear(8, 2))


def _fit(precision: str, audit: bool) -> dict:
    fabric = Fabric(accelerator="cpu", devices=1, precision=precision)
    fabric.seed_everything(0, verbose=False)
    x, y = _data()
    net = _model()
    model, optimizer = fabric.setup(net, torch.optim.Adam(net.parameters(), lr=1e-2))
    loader = fabric.setup_dataloaders(DataLoader(TensorDataset(x[:160], y[:160]), batch_size=32, shuffle=True))
    dtype = next(net.parameters()).dtype  # float64 under 64-true; float32 under bf16-mixed (autocast is the wrapper's)
    probe = Probe(x[160:].to(dtype), y[160:])
    audits = [InputEffectAudit(), UnitImportanceAudit(["2", "5"]), CounterfactualAudit(max_samples=2)]
    for _ in range(2):
        model.train()
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            fabric.backward(loss)
            optimizer.step()
        if audit:
            before = is_autocast_enabled("cpu")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for a in audits:
                    a.run(model.module, probe)
            assert is_autocast_enabled("cpu") == before
            assert all(m.training for m in net.modules())
    return {
        "state": {k: v.clone() for k, v in net.state_dict().items()},
        "grads": [p.grad.clone() for p in net.parameters()],
        "optimizer": [s["exp_avg"].clone() for s in optimizer.state_dict()["state"].values()],
        "rng": (torch.rand(3), float(np.random.rand()), random.random()),
    }


@pytest.mark.parametrize("precision", ["bf16-mixed", "64-true"])
def test_audits_between_fabric_epochs_leave_the_loop_bit_identical(precision):
    """Dropout, a shuffled loader and BatchNorm: any draw from the global RNG, any BatchNorm update or
    mode left behind by the audits (a gradient-based one among them) would change the second epoch."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Fabric's notes on the CPU / bf16 autocast
        plain, audited = _fit(precision, False), _fit(precision, True)
    for key, value in plain["state"].items():
        assert torch.equal(value, audited["state"][key]), key
    assert all(torch.equal(a, b) for a, b in zip(plain["grads"], audited["grads"]))
    assert all(torch.equal(a, b) for a, b in zip(plain["optimizer"], audited["optimizer"]))
    assert torch.equal(plain["rng"][0], audited["rng"][0]) and plain["rng"][1:] == audited["rng"][1:]


def _brute_unit_effects(model: nn.Module, x: torch.Tensor, layer: nn.Module, units: int) -> torch.Tensor:
    """f_t(x) - f_t(x | do(h_u := 0)) per unit, t the class predicted on x, with a plain forward hook."""
    with torch.no_grad():
        out = model(x)
        t = out.argmax(1, keepdim=True)
        cols = []
        for u in range(units):
            handle = layer.register_forward_hook(lambda m, i, o, u=u: o.index_fill(1, torch.tensor([u]), 0.0))
            try:
                cols.append((out.gather(1, t) - model(x).gather(1, t))[:, 0])
            finally:
                handle.remove()
    return torch.stack(cols, 1)


def test_unit_importance_of_the_fabric_module_equals_a_float64_hook_loop():
    """Under "64-true" the unwrapped module computes in float64: equal to the hand-written do-loop to
    rounding. The wrapper casts its outputs to float32 (Fabric's convert_output), so its effects are
    float32 numbers of the same quantity (documented in docs/recipes.md)."""
    torch.manual_seed(0)
    fabric = Fabric(accelerator="cpu", devices=1, precision="64-true")
    net = nn.Sequential(nn.Linear(4, 12), nn.Tanh(), nn.Linear(12, 6), nn.ReLU(), nn.Linear(6, 3))
    model = fabric.setup(net)
    x = torch.randn(40, 4, dtype=torch.float64)
    reference = _brute_unit_effects(net, x, net[1], 12)
    effects = unit_effects(model.module, x, "1")
    assert effects.dtype == torch.float64
    torch.testing.assert_close(effects, reference, rtol=0, atol=1e-12)
    result = UnitImportanceAudit(["1"]).run(model.module, Probe(x))
    torch.testing.assert_close(result.vectors["importance/1"].double(), reference.abs().mean(0), rtol=0, atol=1e-12)
    wrapped = unit_effects(model, x, "_forward_module.1")  # the wrapper's own name of the layer
    assert wrapped.dtype == torch.float32
    torch.testing.assert_close(wrapped.double(), reference, rtol=0, atol=1e-6)


def test_a_repair_term_is_a_plain_loss_term_for_fabric_backward():
    """term.loss(model, x, y) on the Fabric wrapper, backpropagated by fabric.backward, gives the same
    gradients as the same loss on the plain module with loss.backward() (full precision), and equals
    the total variation of the class probabilities between x and its flip, computed by hand."""
    x, y = _data()
    x, y = x[:32], y[:32]
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    twin = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    twin.load_state_dict(net.state_dict())
    term = CounterfactualFairnessTerm(AttributeFlip(0), weight=2.0)
    fabric = Fabric(accelerator="cpu", devices=1, precision="32-true")
    model = fabric.setup(net)
    penalty = term.loss(model, x, y)
    fabric.backward(F.cross_entropy(model(x), y) + term.weight_at(0) * penalty)
    x_cf = x.clone()
    x_cf[:, 0] = 1 - x_cf[:, 0]
    by_hand = 0.5 * (twin(x).softmax(1) - twin(x_cf).softmax(1)).abs().sum(1).mean()
    (F.cross_entropy(twin(x), y) + 2.0 * by_hand).backward()
    torch.testing.assert_close(penalty, by_hand)
    for p, q in zip(net.parameters(), twin.parameters()):
        torch.testing.assert_close(p.grad, q.grad)
