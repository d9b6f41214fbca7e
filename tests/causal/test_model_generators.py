"""Generators a model holds itself (``self.gen``): restored by every audit, seen by the noise checks,
seeded by common random numbers."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import torch
from torch import nn

from lightning_causal import CausalAuditCallback, InputEffectAudit, UnitImportanceAudit
from lightning_causal.causal import input_effects, unit_effects
from lightning_causal.causal.engine.generators import module_generators
from lightning_causal.models import LightningClassifier
from tests.helpers.lightning import quick_trainer, synthetic_loaders


class OwnNoise(nn.Module):
    """A linear map plus noise from a generator of its own, drawn in train and eval mode alike."""

    def __init__(self, noisy: bool = True) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.hidden, self.out = nn.Linear(4, 6), nn.Linear(6, 3)
        self.noisy = noisy
        self.gens = {"eps": torch.Generator().manual_seed(123)}  # in a dict attribute: found there too

    def forward(self, x):
        h = self.hidden(x)
        return self.out(h) + (torch.randn(x.shape[0], 3, generator=self.gens["eps"]) if self.noisy else 0)


def test_found_in_attributes_and_containers():
    inner = OwnNoise()
    shared = nn.Sequential(inner, nn.Identity())
    shared[1].gen = inner.gens["eps"]  # the same generator held twice: listed once
    assert module_generators(shared) == [inner.gens["eps"]]
    assert module_generators(nn.Linear(2, 2)) == []


def test_estimators_leave_the_generator_where_it_was():
    model, x = OwnNoise(), torch.randn(10, 4, generator=torch.Generator().manual_seed(1))
    before = model.gens["eps"].get_state()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        input_effects(model, x, target=0)
        unit_effects(model, x, "hidden", target=0)
    assert torch.equal(model.gens["eps"].get_state(), before)


def test_noise_is_seen_and_common_random_numbers_cancel_it():
    # additive noise after the last layer: with one draw per sample in the clean and the intervened
    # passes, every effect is the noise-free model's (the draw cancels); with separate draws it does not
    model, clean = OwnNoise(), OwnNoise(noisy=False)
    x = torch.randn(10, 4, generator=torch.Generator().manual_seed(1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        effects = input_effects(model, x, target=0)
        units = unit_effects(model, x, "hidden", target=0)
    assert any("random" in str(w.message) for w in caught)  # the noise is reported
    torch.testing.assert_close(effects, input_effects(clean, x, target=0), atol=1e-5, rtol=0)
    torch.testing.assert_close(units, unit_effects(clean, x, "hidden", target=0), atol=1e-5, rtol=0)


class _Flat(nn.Module):
    """The tiny digits images flattened into :class:`OwnNoise`-style noise (train and eval)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(64, 16), nn.Linear(16, 4)
        self.gen = torch.Generator().manual_seed(5)

    def forward(self, x):
        h = torch.relu(self.fc1(x.flatten(1)))
        return self.fc2(h + 0.1 * torch.randn(h.shape, generator=self.gen))


def _fit(with_callback: bool, tmp_path):
    pl.seed_everything(3, verbose=False)
    module = LightningClassifier(_Flat(), lr=0.05, optimizer="sgd")
    train, val = synthetic_loaders()
    audits = [InputEffectAudit(patch_size=4), UnitImportanceAudit(["model.fc1"], top_k=3)]
    callbacks = [CausalAuditCallback(audits, every_n_epochs=1, probe_size=8, report_dir=tmp_path / "r")] if with_callback else []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quick_trainer(callbacks=callbacks, max_epochs=2, num_sanity_val_steps=0).fit(module, train, val)
    return module


def test_a_fit_is_bit_identical_with_the_callback(tmp_path):
    a, b = _fit(False, tmp_path), _fit(True, tmp_path)
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(pa, pb), name
    assert torch.equal(a.model.gen.get_state(), b.model.gen.get_state())
