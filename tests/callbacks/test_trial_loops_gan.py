"""A GAN trained by manual optimization (two optimizers, both stepped in each batch) with the audit callback
(the loops trial): the callbacks explain ``pl_module`` (its ``forward``), which in Lightning's GAN example is the
generator, so a probe of real samples was refused with advice about ``forward``'s parameters and
``unpack_batch`` only. The refusal now names ``audited_module``; with it the audits explain the discriminator:
the logged effect equals a float64 do-loop on its weights at the epoch's end, at Lightning's logging step (one
per batch, not per optimizer step), and training is bit-identical without the callback."""

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks import CausalAuditCallback

TAG = "causal/input_effect/mean_abs_effect"


class _GAN(pl.LightningModule):
    """Lightning's GAN example in small: ``forward`` is the generator of 6-feature samples from 4 noises."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.generator = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 6))
        self.discriminator = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    def training_step(self, batch, batch_idx):
        real = batch[0]
        opt_g, opt_d = self.optimizers()
        fake = self(torch.randn(real.shape[0], 4))
        ones, zeros = torch.ones(real.shape[0], 1), torch.zeros(real.shape[0], 1)
        loss_g = F.binary_cross_entropy_with_logits(self.discriminator(fake), ones)
        opt_g.zero_grad()
        self.manual_backward(loss_g)
        opt_g.step()
        scores = self.discriminator(torch.cat([real, fake.detach()]))
        loss_d = F.binary_cross_entropy_with_logits(scores, torch.cat([ones, zeros]))
        opt_d.zero_grad()
        self.manual_backward(loss_d)
        opt_d.step()
        self.log("loss_d", loss_d)

    def configure_optimizers(self):
        return (torch.optim.Adam(self.generator.parameters(), lr=0.01),
                torch.optim.Adam(self.discriminator.parameters(), lr=0.01))


class _AuditedGAN(_GAN):
    @property
    def audited_module(self) -> nn.Module:
        return self.discriminator


class _Weights(pl.Callback):
    def __init__(self) -> None:
        self.at: dict[int, dict[str, torch.Tensor]] = {}

    def on_train_epoch_end(self, trainer, pl_module):
        self.at[trainer.current_epoch] = {k: v.detach().clone() for k, v in pl_module.discriminator.state_dict().items()}


def _real() -> torch.Tensor:
    return torch.randn(32, 6, generator=torch.Generator().manual_seed(0)) + 1.0


def _fit(root, module_class, with_callback=True):
    pl.seed_everything(0, verbose=False)
    module = module_class()
    audit = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=8)
    weights = _Weights()
    trainer = pl.Trainer(max_epochs=2, callbacks=([audit] if with_callback else []) + [weights], accelerator="cpu",
                         devices=1, logger=TensorBoardLogger(root, name="", version=""), enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False, deterministic=True, log_every_n_steps=1)
    trainer.fit(module, DataLoader(TensorDataset(_real()), batch_size=8, shuffle=True))
    return audit, trainer, weights


def _brute_force(weights: dict[str, torch.Tensor], x: torch.Tensor) -> float:
    """mean_{n,g} |d(x_n) - d(x_n | do(x_g := 0))| of the discriminator's logit, in float64."""
    net = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 1)).double()
    net.load_state_dict({k: v.double() for k, v in weights.items()})
    x = x.double()
    with torch.no_grad():
        out = net(x)[:, 0]
        cut = [x.clone().index_fill_(1, torch.tensor([g]), 0.0) for g in range(6)]
        return float(torch.stack([(out - net(c)[:, 0]).abs() for c in cut]).mean())


def test_a_gan_whose_forward_is_the_generator_is_refused_naming_audited_module(tmp_path):
    with pytest.raises(MisconfigurationException, match="rejected by the model") as err:
        _fit(tmp_path, _GAN)
    assert "audited_module" in str(err.value) and "discriminator" in str(err.value)


def test_a_gans_audited_module_explains_the_discriminator_at_each_epochs_end(tmp_path):
    audit, trainer, weights = _fit(tmp_path / "a", _AuditedGAN)
    assert audit.audited_epochs == [0, 1] and trainer.global_step == 16  # 2 optimizer steps per batch
    events = EventAccumulator(str(tmp_path / "a"), size_guidance={"scalars": 0})
    events.Reload()
    logged = events.Scalars(TAG)
    assert [e.step for e in logged] == [3, 7]  # Lightning's logging step: batches, 4 an epoch
    probe = _real()[:8]
    for epoch, event in zip((0, 1), logged):
        assert event.value == pytest.approx(_brute_force(weights.at[epoch], probe), rel=1e-5, abs=1e-7)
    _, _, plain = _fit(tmp_path / "b", _AuditedGAN, with_callback=False)
    for name, value in plain.at[1].items():
        assert torch.equal(weights.at[1][name], value), name
