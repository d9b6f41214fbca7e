"""Review of 312fdcab: the module's ``train(False)`` marked the model's carried state to be read again at every
``eval()``, also outside a validation loop: a callback that looks at predictions mid-epoch (``pl_module.eval()``, a
pass, ``pl_module.train()``), or CausalAuditCallback's probe check after the first step of a lazy model, made the next
step run unfused, whose dropout draws differ from the fused step's, so the weights after one epoch differed from those
of the same fit without that callback. Only a Lightning validation loop's ``eval()`` marks it now."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, CausalRepairModule
from lightning_causal.audits import InputEffectAudit
from lightning_causal.causal import AttributeFlip
from lightning_causal.repair import CounterfactualFairnessTerm


def _data() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 4, generator=g)
    x[:, 0] = (x[:, 0] > 0).float()
    return DataLoader(TensorDataset(x, torch.randint(0, 2, (48,), generator=g)), batch_size=8)


class Peek(pl.Callback):
    """Looks at two predictions after every training step, as a callback that logs samples does."""

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: object, batch: object,
                           batch_idx: int) -> None:
        pl_module.eval()
        with torch.no_grad():
            pl_module.model(batch[0][:2])
        pl_module.train()


class ReadSteps(pl.Callback):
    """The steps at which the module reads the model's carried state (and so runs unfused)."""

    def __init__(self) -> None:
        self.steps: list[int] = []

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: object,
                             batch_idx: int) -> None:
        if pl_module.__dict__.get("_carried") is None:
            self.steps.append(batch_idx)


def _fit(callbacks: list[pl.Callback], lazy: bool = False) -> tuple[torch.Tensor, list[int]]:
    pl.seed_everything(0, verbose=False)
    model = nn.Sequential(nn.LazyLinear(16) if lazy else nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 2))
    repair = CausalRepairModule(model, [CounterfactualFairnessTerm(AttributeFlip(0), weight=1.0)])
    read = ReadSteps()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False, callbacks=[read, *callbacks]).fit(repair, _data())
    return torch.cat([p.detach().flatten() for p in model.parameters()]), read.steps


def test_a_callback_that_puts_the_module_in_eval_mode_mid_epoch_leaves_training_as_it_was() -> None:
    plain, plain_steps = _fit([])
    peeked, peeked_steps = _fit([Peek()])
    assert plain_steps == peeked_steps == [0]  # before: [0, 1, 2, 3, 4, 5], every step after an eval() unfused
    assert torch.equal(plain, peeked)  # before: other dropout masks, weights 0.007 apart


def test_the_audit_callbacks_probe_check_of_a_lazy_model_leaves_training_as_it_was(tmp_path) -> None:
    plain, plain_steps = _fit([], lazy=True)
    audited, audited_steps = _fit([CausalAuditCallback([InputEffectAudit()], every_n_epochs=5,
                                                       report_dir=str(tmp_path))], lazy=True)
    assert plain_steps == audited_steps == [0]  # before: [0, 1], the check after step 0 marked the state
    assert torch.equal(plain, audited)  # before: 0.005 apart
