"""A diffusion-style denoiser ``forward(x_t, t)`` trained on batches of clean samples ``(x0,)``, whose
``training_step`` draws the timesteps and the noise: the callback's ``unpack_batch`` makes the probe's
``(x_t, t)`` the same way, drawing from the global generators. Those draws must not move training's
random streams (the same seed gives bit-identical weights with and without the callback), and every fit
must explain the same probe."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit
from lightning_causal.callbacks._probe import probe_from
from tests.helpers.lightning import trainer

STEPS = 50
ABAR = torch.linspace(0.99, 0.2, STEPS)
X0 = torch.rand(48, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def noisy(x0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The training step's draws: a timestep per sample and the noise, from the global generator."""
    t = torch.randint(0, STEPS, (len(x0),))
    noise = torch.randn_like(x0)
    a = ABAR[t][:, None, None, None]
    return a.sqrt() * x0 + (1 - a).sqrt() * noise, t, noise


def unpack_noisy(batch):
    x_t, t, _ = noisy(batch[0])
    return (x_t, t), None, None


class Denoiser(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.temb = nn.Embedding(STEPS, 4)
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.out = nn.Conv2d(4, 1, 3, padding=1)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.out(F.silu(self.conv1(x_t) + self.temb(t)[:, :, None, None]))

    def training_step(self, batch, batch_idx):
        x_t, t, noise = noisy(batch[0])
        return F.mse_loss(self(x_t, t), noise)

    def validation_step(self, batch, batch_idx):
        x_t, t, noise = noisy(batch[0])
        self.log("val_loss", F.mse_loss(self(x_t, t), noise))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(tmp_path, audited: bool):
    pl.seed_everything(0, verbose=False)
    module = Denoiser()
    region = lambda out: out[:, :, 1:3, 1:3].mean((2, 3))  # noqa: E731 - the predicted noise of a region, [N, 1]
    callbacks = [CausalAuditCallback([InputEffectAudit(patch_size=2, output=region, ace_values=None)], probe_size=8,
                                     unpack_batch=unpack_noisy, explain="x_t", report_dir=tmp_path / "reports")] if audited else []
    loaders = (DataLoader(TensorDataset(X0[:32]), batch_size=8, shuffle=True), DataLoader(TensorDataset(X0[32:]), batch_size=8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer(tmp_path, max_epochs=2, callbacks=callbacks).fit(module, *loaders)
    return module, torch.rand(3), callbacks


def test_an_unpack_batch_that_draws_the_inputs_leaves_training_bit_identical(tmp_path):
    plain, plain_next, _ = _fit(tmp_path / "plain", audited=False)
    audited, audited_next, callbacks = _fit(tmp_path / "audited", audited=True)
    assert callbacks[0].last_results  # the audits ran, at both epochs
    for (name, a), b in zip(plain.state_dict().items(), audited.state_dict().values()):
        assert torch.equal(a, b), name
    assert torch.equal(plain_next, audited_next)  # the global stream after the fit, too


def test_the_probe_an_unpack_batch_draws_is_the_same_whatever_the_global_state():
    probes = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        before = torch.random.get_rng_state()
        probes.append(probe_from((X0[:8],), 8, unpack_noisy))
        assert torch.equal(torch.random.get_rng_state(), before)  # nothing drawn from training's stream
    (x_a, t_a), (x_b, t_b) = probes[0].inputs, probes[1].inputs
    assert torch.equal(x_a, x_b) and torch.equal(t_a, t_b)
    torch.manual_seed(0)  # audit_seed's draws, by hand: the probe is the training step's draws from seed 0
    x_t, t, _ = noisy(X0[:8])
    assert torch.equal(x_a, x_t) and torch.equal(t_a, t)


def _refusal(tmp_path, **options) -> str:
    pl.seed_everything(0, verbose=False)
    loaders = (DataLoader(TensorDataset(X0[:16]), batch_size=8), DataLoader(TensorDataset(X0[16:32]), batch_size=8))
    callback = CausalAuditCallback([InputEffectAudit(patch_size=2, output=lambda out: out.mean((1, 2, 3)))], probe_size=8,
                                   report_dir=tmp_path / "reports", **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            trainer(tmp_path, max_epochs=1, callbacks=[callback]).fit(Denoiser(), *loaders)
        except pl.utilities.exceptions.MisconfigurationException as err:
            return str(err)
    raise AssertionError("the fit was not refused")


def test_a_probe_whose_timesteps_were_read_as_labels_is_told_so(tmp_path):
    g = torch.Generator().manual_seed(1)
    t = torch.randint(0, STEPS, (8,), generator=g)
    message = _refusal(tmp_path, probe=(X0[:8], t))  # (x_t, t): the default reads (inputs, labels)
    assert "missing 1 required positional argument: 't'" in message
    assert "the labels it read, [8] of torch.int64, reach no model call" in message
    assert "((x_t, t),)" in message and "unpack_batch=lambda batch: ((batch[0], batch[1]), None, None)" in message


def test_a_probe_of_clean_samples_is_told_to_make_the_inputs_in_unpack_batch(tmp_path):
    message = _refusal(tmp_path)  # the validation batches (x0,): forward(x_t, t) misses t
    assert "the labels it read" not in message  # none were read
    assert "where `training_step` makes forward's inputs from the batch" in message
    assert "`unpack_batch=` may make them the same way" in message


def test_a_probe_without_labels_written_with_none_names_the_forms_that_work(tmp_path):
    g = torch.Generator().manual_seed(1)
    t = torch.randint(0, STEPS, (8,), generator=g)
    message = _refusal(tmp_path, probe=((X0[:8], t), None))
    assert "got a tuple of [a tuple of [Tensor, Tensor], NoneType]" in message
    assert "without labels give (x,), or ((x1, x2),)" in message and "Probe(inputs, labels=None" in message
    callback = CausalAuditCallback([InputEffectAudit(patch_size=2, output=lambda out: out.mean((1, 2, 3)), ace_values=None)],
                                   probe=((X0[:8], t),), explain="x_t", probe_size=8, report_dir=tmp_path / "ok")
    loaders = (DataLoader(TensorDataset(X0[:16]), batch_size=8), DataLoader(TensorDataset(X0[16:32]), batch_size=8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer(tmp_path / "ok", max_epochs=1, callbacks=[callback]).fit(Denoiser(), *loaders)
    assert torch.equal(callback.probe.inputs[1], t)  # the form the message names: t is an input, not a label
    assert callback.probe.labels is None and "input_effect" in callback.last_results


def test_the_docs_denoiser_callback_runs_as_printed_and_leaves_training_bit_identical(tmp_path):
    page = (Path(__file__).resolve().parents[2] / "docs" / "your_model.md").read_text()
    code = re.search(r"<!-- denoiser -->\s*```python\n(.*?)```", page, re.S).group(1)

    def fit(callbacks):
        pl.seed_everything(0, verbose=False)
        module = Denoiser()
        loaders = (DataLoader(TensorDataset(X0[:32]), batch_size=8, shuffle=True), DataLoader(TensorDataset(X0[32:]), batch_size=8))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer(tmp_path / str(len(callbacks)), max_epochs=1, callbacks=callbacks).fit(module, *loaders)
        return module

    ns: dict = {}
    exec(compile(code, "<your_model.md denoiser>", "exec"), ns)  # noqa: S102 - the docs' own example
    callback = ns["callback"]
    callback.probe_size, callback.report_dir = 8, tmp_path / "reports"
    audited, plain = fit([callback]), fit([])
    for (name, a), b in zip(plain.state_dict().items(), audited.state_dict().values()):
        assert torch.equal(a, b), name
    assert set(callback.last_results) == {"input_effect", "unit_importance"}
    torch.manual_seed(0)  # the probe: the snippet's draws from seed 0 on the first validation samples
    x_t, t, _ = ns["noisy"](X0[32:40])
    assert torch.equal(callback.probe.inputs[0], x_t) and torch.equal(callback.probe.inputs[1], t)
