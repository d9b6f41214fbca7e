"""A CausalRepairModule subclass whose own ``on_validation_end`` does not call ``super()`` (a hook users override to
log or to reset metrics) lost the module's reading of the model's carried state after a validation loop, which lived
in that hook: a model whose state a validation sets up (mid-epoch, ``val_check_interval=2``) kept running fused and
was left with the joint batch's state, ``h [16, 5]`` for batches of 8. The reading lives in the module's
``train(False)`` now, which a validation loop calls at its start, whatever hooks a subclass overrides."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalRepairModule
from lightning_causal.causal import AttributeFlip
from lightning_causal.repair import CounterfactualFairnessTerm

N, F, H = 8, 4, 5


def _data() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, F, generator=g)
    x[:, 0] = (x[:, 0] > 0).float()
    return DataLoader(TensorDataset(x, torch.randint(0, 2, (40,), generator=g)), batch_size=N)


class LazyStream(nn.Module):
    """A ``GRUCell`` stream whose state ``h``, created at the first validation, is carried from training batch to
    training batch."""

    def __init__(self) -> None:
        super().__init__()
        self.cell, self.head = nn.GRUCell(F, H), nn.Linear(H, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training and not hasattr(self, "h"):
            self.h = None  # set up at the first validation
        state = getattr(self, "h", None)
        h = self.cell(x, state if self.training and state is not None and state.shape[0] == x.shape[0] else None)
        if self.training and hasattr(self, "h"):
            self.h = h.detach()
        return self.head(h)


class OwnHooks(CausalRepairModule):
    """Validation hooks of its own, without ``super()``."""

    def on_validation_start(self) -> None:
        self.started = getattr(self, "started", 0) + 1

    def on_validation_end(self) -> None:
        self.ended = getattr(self, "ended", 0) + 1


class Task(pl.LightningModule):
    """A task module around the stream, with a validation hook of its own (for ``CausalRepairModule.wrap``)."""

    def __init__(self) -> None:
        super().__init__()
        self.net, self.ended = LazyStream(), 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: object, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch: object, batch_idx: int) -> None:
        self(batch[0])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=1e-3)

    def on_validation_end(self) -> None:
        self.ended += 1


def _fit(repair: pl.LightningModule) -> None:
    pl.seed_everything(0, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False, val_check_interval=2, num_sanity_val_steps=0).fit(repair, _data(), _data())


def _term() -> list[CounterfactualFairnessTerm]:
    return [CounterfactualFairnessTerm(AttributeFlip(0), weight=1.0)]


def test_a_subclass_with_validation_hooks_of_its_own_still_reads_the_state_a_validation_set_up() -> None:
    model = LazyStream()
    repair = OwnHooks(model, _term())
    _fit(repair)
    assert repair.started == repair.ended == 2  # validations after the 2nd and 4th of 5 batches
    assert repair._carried == (("h", (N, H)),)  # before: () (read at the first step only, before the validation)
    assert model.h.shape == (N, H)  # before: [16, 5], the joint batch's of x and its counterfactuals


def test_a_wrap_module_reads_the_state_a_validation_set_up_beside_the_wrapped_modules_hook() -> None:
    task = Task()
    repair = CausalRepairModule.wrap(task, _term())
    _fit(repair)
    assert task.ended == 2
    assert repair._carried == (("net.h", (N, H)),)
    assert task.net.h.shape == (N, H)


def test_leaving_training_mode_marks_the_state_to_be_read_again_only_where_none_was_found() -> None:
    repair = CausalRepairModule(LazyStream(), _term())
    repair._carried = ()
    assert repair.train() is repair and repair._carried == ()  # back to training: nothing to read again
    repair.eval()
    assert repair._carried == () and not repair.training and not repair.model.training  # no validation loop
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    repair.trainer, trainer.validating = trainer, True  # as in a fit's validation loop
    repair.train().eval()
    assert repair._carried is None
    repair._carried = (("h", (N, H)),)
    repair.eval()
    assert repair._carried == (("h", (N, H)),)  # a state found is kept: those steps run unfused anyway
