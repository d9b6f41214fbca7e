"""A denoiser whose ``training_step`` draws its timesteps and noise from a ``torch.Generator`` kept at module level
(``G = torch.Generator().manual_seed(7)``), and whose ``unpack_batch=`` makes the probe's ``(x_t, t)`` with the same
helper: the probe read drew from ``G`` and left it advanced, so every later training step drew other timesteps and
noise and the weights of a fit with the callback differed from those without it, silently. A generator was restored
where ``unpack_batch`` held it (closure, defaults, a bound method's object), not where its code reads it by a global
name, directly or through a function it calls; those are restored now too."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit
from lightning_causal.data_reading import rngs_untouched
from tests.helpers.lightning import trainer

STEPS = 20
ABAR = torch.linspace(0.99, 0.2, STEPS)
G = torch.Generator().manual_seed(7)
X0 = torch.rand(48, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def noisy(x0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The training step's draws, from the module-level generator ``G``."""
    t = torch.randint(0, STEPS, (len(x0),), generator=G)
    noise = torch.randn(x0.shape, generator=G)
    a = ABAR[t][:, None, None, None]
    return a.sqrt() * x0 + (1 - a).sqrt() * noise, t, noise


def unpack(batch):  # reaches G through the global function it calls
    x_t, t, _ = noisy(batch[0])
    return (x_t, t), None, None


def draw_directly(batch):  # reads G by its global name
    return torch.randn(3, generator=G)


class Denoiser(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.temb = nn.Embedding(STEPS, 4)
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.out = nn.Conv2d(4, 1, 3, padding=1)

    def forward(self, x_t, t):
        return self.out(F.silu(self.conv1(x_t) + self.temb(t)[:, :, None, None]))

    def training_step(self, batch, batch_idx):
        x_t, t, noise = noisy(batch[0])
        return F.mse_loss(self(x_t, t), noise)

    def validation_step(self, batch, batch_idx):
        x_t, t, noise = noisy(batch[0])
        self.log("val_loss", F.mse_loss(self(x_t, t), noise))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_a_generator_read_by_global_name_is_restored():
    for function in (unpack, draw_directly):
        before = G.get_state()
        with rngs_untouched(function):
            function((X0[:4],))
        assert torch.equal(G.get_state(), before), function.__name__


def test_a_module_level_generator_of_training_and_unpack_batch_leaves_training_bit_identical(tmp_path):
    def fit(callbacks):
        G.manual_seed(7)
        pl.seed_everything(0, verbose=False)
        module = Denoiser()
        loaders = (DataLoader(TensorDataset(X0[:32]), batch_size=8, shuffle=True), DataLoader(TensorDataset(X0[32:]), batch_size=8))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer(tmp_path / str(len(callbacks)), max_epochs=2, callbacks=callbacks).fit(module, *loaders)
        return module, G.get_state()

    region = lambda out: out[:, :, 2:6, 2:6].mean((2, 3))  # noqa: E731
    callback = CausalAuditCallback([InputEffectAudit(patch_size=4, output=region, ace_values=None)], unpack_batch=unpack,
                                   explain="x_t", probe_size=8, report_dir=tmp_path / "r")
    (audited, g_audited), (plain, g_plain) = fit([callback]), fit([])
    assert torch.equal(g_audited, g_plain)
    for (name, a), b in zip(plain.state_dict().items(), audited.state_dict().values()):
        assert torch.equal(a, b), name
    assert "input_effect" in callback.last_results
