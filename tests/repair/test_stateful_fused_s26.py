"""CausalRepairModule with a model that carries its state across batches (``self.h = h.detach()``): the fused pass
(task rows and a term's counterfactual rows in one batch) left the joint batch's state ``[16, 5]`` instead of the
task's ``[8, 5]``, so ``fuse_forward=True`` trained differently from ``False``; such a model now runs unfused (decided
at the fit's first step), an error of its forward on a term's rows gets a note naming the state, and a model that
carries nothing still fuses."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalRepairModule
from lightning_causal.causal import AttributeFlip
from lightning_causal.repair import CounterfactualFairnessTerm

N, F, H = 8, 4, 5


class Streams(nn.Module):
    """N streams, one step per batch: ``GRUCell`` state ``h [N, H]`` carried across batches; with ``guard`` read only
    where the batch's size matches (else a fresh state)."""

    def __init__(self, guard: bool) -> None:
        super().__init__()
        self.cell, self.head, self.h, self.guard = nn.GRUCell(F, H), nn.Linear(H, 2), None, guard

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fits = self.h is not None and (not self.guard or self.h.shape[0] == x.shape[0])
        h = self.cell(x, self.h if self.training and fits else None)
        self.h = h.detach()
        return self.head(h)


def _data() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, F, generator=g)
    x[:, 0] = (x[:, 0] > 0).float()
    return DataLoader(TensorDataset(x, torch.randint(0, 2, (40,), generator=g)), batch_size=N)


def _fit(model: nn.Module, fuse: bool) -> CausalRepairModule:
    pl.seed_everything(0)
    repair = CausalRepairModule(model, [CounterfactualFairnessTerm(AttributeFlip(0), weight=1.0)], fuse_forward=fuse)
    pl.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False).fit(repair, _data())
    return repair


def fit_fused_and_unfused(make: type[nn.Module]) -> tuple[CausalRepairModule, nn.Module, nn.Module]:
    """Two ``make()`` models of the same weights (seed 0), fitted by ``_fit`` with the fused pass and without (warnings
    ignored): the fused fit's repair module and both models."""
    torch.manual_seed(0)
    fused, unfused = make(), make()
    unfused.load_state_dict(fused.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        repair = _fit(fused, True)
        _fit(unfused, False)
    return repair, fused, unfused


def test_fused_and_unfused_fits_of_a_stateful_model_give_the_same_weights_and_state() -> None:
    torch.manual_seed(0)
    fused_model = Streams(guard=True)
    unfused_model = Streams(guard=True)
    unfused_model.load_state_dict(fused_model.state_dict())
    _fit(fused_model, True)
    _fit(unfused_model, False)
    assert fused_model.h.shape == (N, H)  # the task's streams, not the joint batch's [16, 5]
    assert torch.equal(fused_model.h, unfused_model.h)
    for (name, a), b in zip(fused_model.state_dict().items(), unfused_model.state_dict().values()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("fuse", [True, False])
def test_a_model_that_cannot_run_the_terms_rows_with_its_state_gets_a_note_naming_it(fuse: bool) -> None:
    with pytest.raises(RuntimeError, match="Input batch size 16 doesn't match hidden0 batch size 8") as info:
        _fit(Streams(guard=False), fuse)
    note = " ".join(getattr(info.value, "__notes__", []))
    assert "carries a state across batches (h [8, 5]" in note
    assert "term 'counterfactual_fairness' (CounterfactualFairnessTerm) ran it on 16 rows" in note
    assert "self.h.shape[0] == x.shape[0]" in note and "'A state carried across batches'" in note


def test_a_model_that_carries_nothing_still_runs_fused() -> None:
    model = nn.Sequential(nn.Linear(F, H), nn.ReLU(), nn.Linear(H, 2))
    rows: list[int] = []
    model.register_forward_pre_hook(lambda m, args: rows.append(args[0].shape[0]))
    repair = _fit(model, True)
    assert repair._carried == ()
    # each epoch's first step runs the task's rows alone (the state it sets is read there), then its term's 8 and 8
    # rows; every later step one joint pass of the 8 task rows and their 8 counterfactuals
    assert rows == ([8, 16] + [16] * 4) * 2


class _Counted(nn.Module):
    """Spectral-normed layers (their ``u`` and ``v`` buffers updated in place at every training pass) and a step
    counter buffer: state that is not sized by the batch, the same after a joint pass."""

    def __init__(self) -> None:
        super().__init__()
        spectral = nn.utils.parametrizations.spectral_norm
        self.net = nn.Sequential(spectral(nn.Linear(F, H)), nn.ReLU(), spectral(nn.Linear(H, 2)))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.steps += 1
        return self.net(x)


def test_a_model_whose_state_is_not_sized_by_the_batch_still_runs_fused() -> None:
    torch.manual_seed(0)
    model = _Counted()
    rows: list[int] = []
    model.register_forward_pre_hook(lambda m, args: rows.append(args[0].shape[0]))
    repair = _fit(model, True)
    assert repair._carried == ()  # before: the 4 u/v buffers and steps, so every step ran unfused
    assert rows == ([8, 16] + [16] * 4) * 2
    assert int(model.steps) == 10  # one per step (before: 20, two per step; 11 before stateful_qat_s27)


def test_a_model_found_to_carry_no_state_is_spared_keeping_its_attributes_at_each_term(monkeypatch) -> None:
    """add_terms kept and put back every module's attributes around each term's passes at every step (about 1.4 ms a
    term a step on a 300-module network), also for a model whose first step showed it carries no state; it does so
    now only where the model carries state, and a stateful model still ends with the task's state."""
    from lightning_causal.repair import objective

    calls = []
    real = objective.kept_step_state
    monkeypatch.setattr(objective, "kept_step_state", lambda *a, **k: calls.append(1) or real(*a, **k))
    _fit(nn.Sequential(nn.Linear(F, H), nn.ReLU(), nn.Linear(H, 2)), False)  # 10 steps, unfused: a term pass each
    assert calls == []
    stateful = Streams(guard=True)
    _fit(stateful, False)
    assert len(calls) == 10 and stateful.h.shape == (N, H)
