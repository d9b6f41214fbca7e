"""An ``unpack_batch=`` that makes a denoiser's probe ``(x_t, t)`` from clean samples, drawing from a generator the
model holds (``self.gen``, as its ``training_step`` draws from it), not from the global ones: ``probe_from`` seeded
and restored the global generators around it only, so the probe read advanced the model's generator and the audited
fit trained on other timesteps and noise than the plain fit with the same seed (review of c32b5688)."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit
from lightning_causal.callbacks._probe import probe_from
from tests.helpers.lightning import trainer

STEPS = 20
ABAR = torch.linspace(0.99, 0.2, STEPS)
X0 = torch.rand(24, 1, 4, 4, generator=torch.Generator().manual_seed(0))


class Denoiser(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.temb = nn.Embedding(STEPS, 2)
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.out = nn.Conv2d(2, 1, 3, padding=1)
        self.gen = torch.Generator().manual_seed(7)  # the diffusion draws of its own

    def noisy(self, x0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        t = torch.randint(0, STEPS, (len(x0),), generator=self.gen)
        noise = torch.randn(x0.shape, generator=self.gen)
        a = ABAR[t][:, None, None, None]
        return a.sqrt() * x0 + (1 - a).sqrt() * noise, t, noise

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.out(F.silu(self.conv(x_t) + self.temb(t)[:, :, None, None]))

    def training_step(self, batch, batch_idx):
        x_t, t, noise = self.noisy(batch[0])
        return F.mse_loss(self(x_t, t), noise)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


MODEL = Denoiser()


def unpack_global(batch):
    """As a script writes it: a function of its own that reaches the model as a global name (no closure)."""
    return MODEL.noisy(batch[0])[:2], None, None


def test_probe_from_seeds_and_restores_the_model_generator_the_unpack_batch_draws_from():
    probes = []
    for state in (1, 2):  # whatever the generator's state at the read: the same probe, the state left as it was
        MODEL.gen.manual_seed(state)
        before = MODEL.gen.get_state()
        probes.append(probe_from((X0[:8],), 8, unpack_global, model=MODEL))
        assert torch.equal(MODEL.gen.get_state(), before)  # training's next draws are those of the plain fit
    MODEL.gen.manual_seed(0)  # AUDIT_SEED, by hand
    x_t, t, _ = MODEL.noisy(X0[:8])
    for probe in probes:
        assert torch.equal(probe.inputs[0], x_t) and torch.equal(probe.inputs[1], t)


def test_probe_from_restores_a_generator_of_the_unpack_batch_closure():
    g = torch.Generator().manual_seed(3)
    before = g.get_state()
    probe_from((X0[:8],), 8, lambda batch: ((batch[0], torch.randint(0, STEPS, (len(batch[0]),), generator=g)), None, None))
    assert torch.equal(g.get_state(), before)


def _fit(tmp_path, audited: bool) -> Denoiser:
    pl.seed_everything(0, verbose=False)
    module = Denoiser()
    callbacks = [CausalAuditCallback([InputEffectAudit(patch_size=2, output=lambda out: out.mean((1, 2, 3))[:, None],
                                                       ace_values=None)],
                                     probe_size=8, unpack_batch=lambda batch: (module.noisy(batch[0])[:2], None, None),
                                     explain="x_t", report_dir=tmp_path / "reports")] if audited else []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer(tmp_path, max_epochs=1, callbacks=callbacks).fit(module, DataLoader(TensorDataset(X0), batch_size=8))
    return module


def test_the_audited_fit_trains_as_the_plain_one(tmp_path):
    plain, audited = _fit(tmp_path / "plain", False), _fit(tmp_path / "audited", True)
    for (name, a), b in zip(plain.state_dict().items(), audited.state_dict().values()):
        assert torch.equal(a, b), name
