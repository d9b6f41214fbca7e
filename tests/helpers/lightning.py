"""Lightning helpers for the callback tests: tiny digits data (and a synthetic 4-class set-up), fast Trainer factories, test audits
and spy callbacks that check the audit leaves no trace."""

from __future__ import annotations

import atexit
import functools
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.audits.base import Audit, AuditResult, Probe
from lightning_causal.models import DigitsCNN, LightningClassifier, load_digits_tensors

N_TRAIN, N_VAL = 96, 48


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    xt, yt, xv, yv = load_digits_tensors(seed=0)
    return xt[:N_TRAIN].clone(), yt[:N_TRAIN].clone(), xv[:N_VAL].clone(), yv[:N_VAL].clone()


def digits() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """A small slice of scikit-learn's digits: ``(x_train, y_train, x_val, y_val)``, images [N, 1, 8, 8]."""
    return tuple(t.clone() for t in _digits())  # type: ignore[return-value]


def loaders(batch_size: int = 32, shuffle: bool = True) -> tuple[DataLoader, DataLoader]:
    xt, yt, xv, yv = digits()
    return (
        DataLoader(TensorDataset(xt, yt), batch_size=batch_size, shuffle=shuffle),
        DataLoader(TensorDataset(xv, yv), batch_size=batch_size),
    )


def tiny_cnn(batch_norm: bool = False, dropout: float = 0.0) -> DigitsCNN:
    return DigitsCNN(channels=(4, 8), hidden=16, batch_norm=batch_norm, dropout=dropout)


def classifier(
    seed: int = 0, lr: float = 0.05, optimizer: str = "sgd", **cnn: Any
) -> LightningClassifier:
    torch.manual_seed(seed)
    return LightningClassifier(tiny_cnn(**cnn), lr=lr, optimizer=optimizer)


def trainer(root: str | os.PathLike, **kwargs: Any) -> pl.Trainer:
    """A fast CPU Trainer; any keyword overrides the defaults."""
    defaults: dict[str, Any] = dict(
        default_root_dir=str(root),
        max_epochs=2,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
    )
    defaults.update(kwargs)
    return pl.Trainer(**defaults)


def reports(report_dir: str | os.PathLike) -> dict[str, dict]:
    """File name -> parsed report for every JSON report in ``report_dir``."""
    from lightning_causal.reporting.json_report import load_report

    d = Path(report_dir)
    return {p.name: load_report(p) for p in sorted(d.glob("*.json"))} if d.exists() else {}


# ---------------------------------------------------------------------------- test audits
class SleepAudit(Audit):
    """An audit that takes ``seconds`` (audit times that differ by far more than noise) and logs ``score``."""

    def __init__(self, name: str, seconds: float) -> None:
        super().__init__(name)
        self.seconds = seconds

    def run(self, model: nn.Module, probe: Probe, *, max_batch_size: int | None = None) -> AuditResult:
        time.sleep(self.seconds)
        return AuditResult(self.name, scalars={"score": self.seconds})


class CarelessAudit(Audit):
    """Everything an audit should not do: train mode, forward with autograd (BatchNorm statistics
    move, dropout draws random numbers), backward into ``.grad``, ``requires_grad`` toggled, draws
    from every global RNG. The callback has to undo all of it."""

    def __init__(self, name: str | None = "careless") -> None:
        super().__init__(name)

    def run(
        self, model: nn.Module, probe: Probe, *, max_batch_size: int | None = None
    ) -> AuditResult:
        model.train()
        for p in model.parameters():
            p.requires_grad_(True)
        with torch.enable_grad():
            out = model(probe.first)
            out.logsumexp(1).sum().backward()
        model.eval()
        noise = float(torch.rand(()) + np.random.rand() + random.random())
        return AuditResult(self.name, scalars={"noise": noise})


# ---------------------------------------------------------------------------- spy callbacks
def snapshot(module: nn.Module) -> dict[str, Any]:
    """Everything an audit must leave untouched."""
    return {
        "modes": {n: m.training for n, m in module.named_modules()},
        "requires_grad": {n: p.requires_grad for n, p in module.named_parameters()},
        "grads": {
            n: None if p.grad is None else p.grad.detach().clone()
            for n, p in module.named_parameters()
        },
        "grad_ids": {
            n: None if p.grad is None else id(p.grad) for n, p in module.named_parameters()
        },
        "state": {k: v.detach().clone() for k, v in module.state_dict().items()},
        "rng": (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()),
        "grad_enabled": torch.is_grad_enabled(),
        "inference": torch.is_inference_mode_enabled(),
    }


def assert_same_snapshot(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert after["modes"] == before["modes"]
    assert after["requires_grad"] == before["requires_grad"]
    assert after["grad_ids"] == before["grad_ids"]
    for n, g in before["grads"].items():
        if g is None:
            assert after["grads"][n] is None, n
        else:
            assert torch.equal(after["grads"][n], g), n
    assert before["state"].keys() == after["state"].keys()
    for k, v in before["state"].items():
        assert torch.equal(after["state"][k], v), k
    assert torch.equal(after["rng"][0], before["rng"][0])
    assert np.array_equal(after["rng"][1], before["rng"][1])
    assert after["rng"][2] == before["rng"][2]
    assert after["grad_enabled"] == before["grad_enabled"]
    assert after["inference"] == before["inference"]


class Before(pl.Callback):
    """Put before the audit callback: snapshots the module at ``on_train_epoch_end``."""

    def __init__(self) -> None:
        self.snap: dict[str, Any] | None = None

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.snap = snapshot(pl_module)


class After(pl.Callback):
    """Put after the audit callback: compares with the snapshot of :class:`Before`."""

    def __init__(self, before: Before) -> None:
        self.before = before
        self.checked = 0

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        assert self.before.snap is not None
        assert_same_snapshot(self.before.snap, snapshot(pl_module))
        self.checked += 1


class WriteSpy(pl.Callback):
    """Records, per rank, each report written and each TensorBoard render (for the DDP test).

    Patches the names the audit callback uses inside the (spawned) worker process and appends one
    JSON line per call to ``<root>/spy_rank<r>.jsonl``.
    """

    def __init__(self, root: str) -> None:
        self.root = root

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        import lightning_causal.callbacks._audit_run as run_mod  # where the callback's audit epochs write reports
        import lightning_causal.callbacks.audit as audit_mod

        rank = trainer.global_rank
        log = Path(self.root) / f"spy_rank{rank}.jsonl"

        def record(kind: str, **info: Any) -> None:
            with log.open("a") as f:
                f.write(json.dumps({"kind": kind, "rank": rank, **info}) + "\n")

        real_write = run_mod.write_report
        real_render = run_mod.TensorBoardRenderer.render

        def write_report(report_dir, epoch, stage, results, **options):  # noqa: ANN001
            record("report", epoch=epoch, stage=stage)
            return real_write(report_dir, epoch, stage, results, **options)

        def render(self_, writer, epoch, results, probe_inputs, **options):  # noqa: ANN001
            record("render", epoch=epoch, writer=type(writer).__name__)
            return real_render(self_, writer, epoch, results, probe_inputs, **options)

        def run_one(self_, audit, pl_module_, epoch):  # noqa: ANN001
            record(
                "audit",
                epoch=epoch,
                audit=audit.name,
                probe=int(len(self_.probe)),
                probe_sum=float(self_.probe.first.double().sum()),
            )
            return real_run_one(self_, audit, pl_module_, epoch)

        real_run_one = audit_mod.CausalAuditCallback._run_one
        run_mod.write_report = write_report
        run_mod.TensorBoardRenderer.render = render
        audit_mod.CausalAuditCallback._run_one = run_one
        self._restore = (run_mod, audit_mod, real_write, real_render, real_run_one)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        run_mod, audit_mod, real_write, real_render, real_run_one = self._restore
        run_mod.write_report = real_write
        run_mod.TensorBoardRenderer.render = real_render
        audit_mod.CausalAuditCallback._run_one = real_run_one


def run_ddp_fit(root: str) -> None:
    """Two CPU processes (``ddp_spawn``, gloo), TensorBoard logger, audits every epoch, spied
    writes; saves the final weights (rank 0's, returned to this process) to ``<root>/final.pt``.
    """
    import warnings

    from lightning.pytorch.loggers import TensorBoardLogger

    from lightning_causal.callbacks.audit import CausalAuditCallback

    warnings.filterwarnings("ignore")
    module = classifier(seed=3)
    cb = CausalAuditCallback(ddp_audits(), probe_size=DDP_PROBE, report_dir=os.path.join(root, "r"))
    t = trainer(
        root,
        strategy="ddp_spawn",
        devices=2,
        max_epochs=2,
        callbacks=[WriteSpy(root), cb],
        logger=TensorBoardLogger(root, name="tb", version=0),
    )
    t.fit(module, *loaders(batch_size=16))
    torch.save(module.state_dict(), os.path.join(root, "final.pt"))


DDP_PROBE = 20


def ddp_audits() -> list[Audit]:
    """Audits run under DDP, each equal to one process's run: the first four share their rows out
    across the processes, the layer map runs whole on each (see docs/architecture.md)."""
    from lightning_causal.audits import (
        CaptumBaseline,
        InputEffectAudit,
        LayerMapAudit,
        SobolAudit,
        UnitImportanceAudit,
    )

    return [
        InputEffectAudit(patch_size=4),
        UnitImportanceAudit(["model.conv1"], top_k=2),
        CaptumBaseline(("Saliency",), patch_size=4),
        SobolAudit(n=32, patch_size=4, n_bootstrap=0),
        LayerMapAudit(patch_size=4, max_rows=None),
    ]


# ---------------------------------------------------------------- synthetic 4-class set-up
def digits_like(n: int = 96, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic 8x8 images with 4 classes read off the image halves (no dataset needed)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 8, 8, generator=g)
    y = (x[:, 0, :4].mean((1, 2)) > x[:, 0, 4:].mean((1, 2))).long() + 2 * (x[:, 0, :, :4].mean((1, 2)) > 0.5).long()
    return x, y


def synthetic_loaders(n: int = 96, batch_size: int = 16, shuffle: bool = True):
    """Train/val loaders of :func:`digits_like` (3:1 split)."""
    x, y = digits_like(n)
    train = DataLoader(TensorDataset(x[: n * 3 // 4], y[: n * 3 // 4]), batch_size=batch_size, shuffle=shuffle)
    val = DataLoader(TensorDataset(x[n * 3 // 4 :], y[n * 3 // 4 :]), batch_size=batch_size)
    return train, val


def small_module(batch_norm: bool = True, dropout: float = 0.2, optimizer: str = "sgd") -> LightningClassifier:
    """A 4-class tiny CNN with BatchNorm and dropout (what an audit must not disturb)."""
    return LightningClassifier(DigitsCNN(channels=(4, 8), hidden=16, num_classes=4, batch_norm=batch_norm, dropout=dropout),
                               lr=0.05, optimizer=optimizer)


_ROOTS = tempfile.mkdtemp(prefix="lightning_causal_tests_")  # the quick trainers' root dirs, removed at exit
atexit.register(shutil.rmtree, _ROOTS, ignore_errors=True)


def quick_trainer(**kwargs) -> pl.Trainer:
    """A deterministic CPU Trainer without a logger (sanity validation steps on) whose root dir is a fresh temporary
    directory: without one, Lightning's is the working directory, and the callback's reports of every such test (and of
    both xdist workers at once) landed in ``./causal_audit`` of the repository; kwargs override."""
    defaults = dict(max_epochs=2, logger=False, enable_progress_bar=False, enable_model_summary=False,
                    enable_checkpointing=False, accelerator="cpu", devices=1, deterministic=True,
                    default_root_dir=tempfile.mkdtemp(dir=_ROOTS))
    defaults.update(kwargs)
    return pl.Trainer(**defaults)


def fits_with_and_without_audits(make: Any) -> tuple[pl.LightningModule, pl.LightningModule]:
    """The module ``make()`` gives, fitted twice from seed 0 (2 epochs of 48 rows of 5 features, batches of 16): with a
    ``CausalAuditCallback`` running ``InputEffectAudit`` on a probe of 8 and without; the weights of both asserted equal
    (the audits change no training). Returns ``(audited, plain)`` for the state the module keeps (a log, a shape)."""
    import warnings

    from lightning_causal.audits import InputEffectAudit
    from lightning_causal.callbacks import CausalAuditCallback

    fitted = []
    for audited in (True, False):
        torch.manual_seed(0)
        data = TensorDataset(torch.randn(48, 5), torch.randint(0, 3, (48,)))
        model = make()
        callbacks = [CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=8)] if audited else []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quick_trainer(max_epochs=2, callbacks=callbacks, num_sanity_val_steps=0).fit(
                model, DataLoader(data, batch_size=16), DataLoader(data, batch_size=16))
        fitted.append(model)
    for (name, a), b in zip(fitted[0].state_dict().items(), fitted[1].state_dict().values()):
        assert torch.equal(a, b), name
    return fitted[0], fitted[1]


class SgdMlp(pl.LightningModule):
    """``Linear(features, 8) -> ReLU -> Linear(8, 3)``, cross-entropy, SGD (lr 0.2, momentum 0.9), ``val_loss``
    logged on every validation dataloader: the module of the schedules and loops trials (float64 do-loops on its
    weights, :func:`torch.nn.Sequential` ``net``)."""

    def __init__(self, features: int = 5) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(features, 8), nn.ReLU(), nn.Linear(8, 3))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        self.log("val_loss", nn.functional.cross_entropy(self(batch[0]), batch[1]))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.2, momentum=0.9)
