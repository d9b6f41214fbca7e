"""``CausalRepairModule.wrap()`` runs the wrapped module's hooks as unwrapped (docs/recipes.md,
docs/api.md). ``on_validation_model_zero_grad`` (Lightning releases the gradients before a validation
run inside ``fit``) was not among them: a module that overrides it (to keep its gradients through a
mid-epoch validation, or to log them) had its override skipped and the gradients cleared under ``wrap()``."""

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.core.hooks import CheckpointHooks, DataHooks, ModelHooks
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalRepairModule, CounterfactualFairnessTerm
from lightning_causal.causal import AttributeFlip
from lightning_causal.repair.wrap import DATA_HOOKS, DELEGATED_HOOKS


class _KeepsGrads(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(3, 2)
        self.calls = 0
        self.grad_at_validation: list[bool] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):
        self.grad_at_validation.append(self.net.weight.grad is not None)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def on_validation_model_zero_grad(self) -> None:  # keep them (Lightning's default sets them to None)
        self.calls += 1


def _loader() -> DataLoader:
    g = torch.Generator().manual_seed(5)
    x = torch.randn(8, 3, generator=g)
    x[:, 0] = (x[:, 0] > 0).float()
    return DataLoader(TensorDataset(x, (x[:, 1] > 0).long()), batch_size=2)


def _fit(module: pl.LightningModule) -> None:
    trainer = pl.Trainer(max_epochs=1, val_check_interval=2, num_sanity_val_steps=0,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, _loader(), _loader())


def test_wrap_runs_the_modules_on_validation_model_zero_grad_as_unwrapped():
    torch.manual_seed(0)
    plain = _KeepsGrads()
    _fit(plain)
    torch.manual_seed(0)
    inner = _KeepsGrads()
    _fit(CausalRepairModule.wrap(inner, [CounterfactualFairnessTerm(AttributeFlip(0), weight=0.5)]))
    assert plain.calls == 2 and plain.grad_at_validation and all(plain.grad_at_validation)  # after batches 2 and 4
    assert inner.calls == plain.calls
    assert inner.grad_at_validation == plain.grad_at_validation


def test_every_lightning_module_hook_is_delegated_by_wrap():
    hooks = {n for c in (ModelHooks, DataHooks, CheckpointHooks) for n, v in vars(c).items()
             if not n.startswith("_") and callable(v)}
    hooks.discard("configure_sharded_model")  # removed in Lightning 2 (overriding it is an error)
    assert hooks <= set(DELEGATED_HOOKS) | set(DATA_HOOKS), sorted(hooks - set(DELEGATED_HOOKS) - set(DATA_HOOKS))
