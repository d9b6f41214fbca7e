"""CausalRepairModule's reading of a state carried across batches (stateful_qat_s27): the step that reads it runs
unfused, and a step counter counted that step twice (a task pass and a term pass) against once at every fused step;
the state was read at a fit's first step only, so a model that starts carrying a state later (after a warm-up
epoch, once a validation set it up) ran fused and left the joint batch's state; a state kept flattened, ``[N * T, H]``,
was not taken for one sized by the batch."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalRepairModule
from lightning_causal.causal import AttributeFlip
from lightning_causal.causal.engine.kept_attributes import keep_attributes
from lightning_causal.repair import CounterfactualFairnessTerm
from lightning_causal.repair.carried_state import sized_by_batch

N, F, H = 8, 4, 5


def _data() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, F, generator=g)
    x[:, 0] = (x[:, 0] > 0).float()
    return DataLoader(TensorDataset(x, torch.randint(0, 2, (40,), generator=g)), batch_size=N)


def _fit(model: nn.Module, epochs: int = 2, **trainer: object) -> CausalRepairModule:
    pl.seed_everything(0, verbose=False)
    repair = CausalRepairModule(model, [CounterfactualFairnessTerm(AttributeFlip(0), weight=1.0)])
    options = dict(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False)
    data = _data()
    pl.Trainer(**{**options, **trainer}).fit(repair, data, data if "val_check_interval" in trainer else None)
    return repair


class _Counted(nn.Module):
    """A step counter as a buffer and as a number, and spectral-normed layers (``u``/``v`` iterated in place)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.utils.parametrizations.spectral_norm(nn.Linear(F, 2))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.steps += 1
            self.calls += 1
        return self.net(x)


def test_a_step_counter_counts_each_step_once_also_the_step_that_reads_the_state() -> None:
    model = _Counted()
    rows: list[int] = []
    model.register_forward_pre_hook(lambda m, args: rows.append(args[0].shape[0]))
    repair = _fit(model)
    assert repair._carried == ()
    assert rows == ([8, 16] + [16] * 4) * 2  # each epoch's first step unfused: the task's 8 rows, the term's 16
    assert int(model.steps) == 10 and model.calls == 10  # before: 11 and 11 (12 with the epoch's reading)


class _Streams(nn.Module):
    """``GRUCell`` streams whose state ``h`` is carried from batch to batch once ``carry`` is set (or, with
    ``lazy``, once a validation pass created it); with ``flat``, two steps a row and the state kept flattened
    ``[2 N, H]``."""

    def __init__(self, carry: bool = True, lazy: bool = False, flat: bool = False) -> None:
        super().__init__()
        self.cell, self.head, self.carry, self.flat = nn.GRUCell(F, H), nn.Linear(H, 2), carry, flat
        if not lazy:
            self.h = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training and not hasattr(self, "h"):
            self.h = None  # set up at the first validation
        n = x.shape[0]
        xs = torch.cat([x, x.flip(1)]) if self.flat else x
        state = getattr(self, "h", None)
        fits = self.training and state is not None and state.shape[0] == xs.shape[0]
        h = self.cell(xs, state if fits else None)
        if self.training and self.carry and hasattr(self, "h"):
            self.h = h.detach()
        return self.head(h.view(2, n, H).mean(0) if self.flat else h)


class _StartCarrying(pl.Callback):
    def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        module.model.carry = trainer.current_epoch >= 1  # after a warm-up epoch


def test_a_model_that_starts_carrying_a_state_after_a_warm_up_epoch_runs_unfused_from_then_on() -> None:
    model = _Streams(carry=False)
    repair = _fit(model, 2, callbacks=[_StartCarrying()])
    assert repair._carried == (("h", (N, H)),)
    assert model.h.shape == (N, H)  # before: [16, 5], the joint batch's


def test_a_state_a_validation_set_up_mid_epoch_is_read_at_the_next_training_step() -> None:
    model = _Streams(lazy=True)
    repair = _fit(model, 1, val_check_interval=2, num_sanity_val_steps=0)
    assert repair._carried == (("h", (N, H)),)
    assert model.h.shape == (N, H)  # before: [16, 5]


def test_a_state_kept_flattened_is_taken_for_a_state_carried_across_batches() -> None:
    model = _Streams(flat=True)
    repair = _fit(model, 1)
    assert repair._carried == (("h", (2 * N, H)),)
    assert model.h.shape == (2 * N, H)  # before: [32, 5], the joint batch's streams


def test_sized_by_batch_takes_a_flattened_state_only_where_it_was_set() -> None:
    assert sized_by_batch((8, 5), 8) and sized_by_batch((3, 8, 5), 8) and sized_by_batch((32, 5), 8)
    assert not sized_by_batch((32,), 8, set_=False)  # spectral_norm's u, updated in place
    assert not sized_by_batch((), 8) and not sized_by_batch((12, 5), 8)


def test_keep_attributes_with_values_puts_back_in_place_updates_and_numbers_without_a_new_version() -> None:
    m = _Counted()
    m(torch.ones(2, F))
    u, steps = m.net.parametrizations.weight[0]._u, m.steps
    u.data.copy_(torch.tensor([1.0, 0.0]))  # far from the power iteration's fixed point: the next pass moves it
    u_before, version = u.clone(), steps._version
    kept = keep_attributes(m, reassigned_buffers=True, values=True)
    m(torch.ones(3, F))
    assert int(m.steps) == 2 and m.calls == 2 and not torch.equal(u, u_before)
    kept.restore()
    assert m.steps is steps and int(steps) == 1 and m.calls == 1 and torch.equal(u, u_before)
    assert steps._version == version + 1  # the pass's update only: a graph that saved it still runs backward
    kept = keep_attributes(m, reassigned_buffers=True)  # without values: in-place updates stay (BatchNorm statistics)
    m(torch.ones(3, F))
    kept.restore()
    assert int(m.steps) == 2 and m.calls == 2


def test_a_wrap_module_reads_the_state_again_after_a_validation_also_where_the_wrapped_module_has_the_hook() -> None:
    class Task(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net, self.ended = nn.Linear(F, 2), 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

        def training_step(self, batch: object, batch_idx: int) -> torch.Tensor:
            x, y = batch
            return nn.functional.cross_entropy(self(x), y)

        def on_validation_end(self) -> None:
            self.ended += 1

    task = Task()
    repair = CausalRepairModule.wrap(task, [CounterfactualFairnessTerm(AttributeFlip(0), weight=1.0)])
    repair._carried = ()
    repair.on_validation_end()
    assert task.ended == 1  # the wrapped module's own hook runs
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    repair.trainer, trainer.validating = trainer, True  # as in a fit's validation loop (review_s28b: only there)
    repair.eval()  # a validation loop's start: the state is read again (leftovers_s28a: not in on_validation_end)
    assert repair._carried is None
