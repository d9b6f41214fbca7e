"""A final read of cbf0660b and bd87574b: the check of weights changed after an epoch's audit compared whole readings
and told buffers training writes only where the weights' names were the same at the epoch's start and its last step.
So (a) an EMA callback listed before the audit, swapping its weights in at the epoch's end and back at the next start,
beside a forward in train mode after the audit moving BatchNorm's statistics, was warned about naming every parameter;
(b) where names changed during the epoch (a LazyLinear built by the first step, a carried state registered as None and
set by the forward) no buffer counted as written, so BatchNorm's statistics and the state were warned about. The
readings are now compared by name (`_moved`). Also, an audited epoch's start read the weights twice (the check's reading,
then the start's): once now."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn

import lightning_causal.callbacks._fit_checks as fit_checks
import lightning_causal.callbacks.audit as audit_module
from lightning_causal.callbacks._fit_checks import buffers_written, weight_sums
from tests.callbacks.test_review_s40_nu100_forward_states import SAID, X, _said
from tests.callbacks.test_review_s40_nu100_forward_states import _Net as _ForwardStatesNet


class _Net(_ForwardStatesNet):  # its training_step and optimizer; a lazy first layer, a carried state set from None
    def __init__(self, lazy: bool = False, forward_at_end: bool = False, carried: bool = False,
                 edit: bool = False) -> None:
        super().__init__(forward_at_end=forward_at_end, edit=edit, carried=carried)
        if lazy:
            self.model[0] = nn.LazyLinear(8)
        self.h = None  # a carried state, set by the first training forward (still a buffer, not persistent)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.carried:
            x = x if self.h is None else x + self.h
            if self.training:
                self.h = x.mean(0, keepdim=True).detach()
        return self.model(x)

    def on_train_epoch_end(self) -> None:  # after the callbacks': after the audit
        if self.forward_at_end:  # a forward in train mode: BatchNorm's statistics move
            with torch.no_grad():
                self(X[:16])
        if self.carried:
            self.h = None  # the carried state reset for the next epoch
        if self.edit and self.current_epoch == 0:
            with torch.no_grad():
                self.model[3].delta += torch.outer(torch.eye(8)[3], torch.ones(8))


class _SwappingEMA(pl.Callback):  # listed before the audit: its weights in for the epoch's end, back at the next start
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.ema = {k: v.detach().clone() for k, v in pl_module.named_parameters()}
        self.saved: dict[str, torch.Tensor] = {}

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: object) -> None:
        for k, v in pl_module.named_parameters():
            self.ema[k].mul_(0.9).add_(v.detach(), alpha=0.1)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.saved = {k: v.detach().clone() for k, v in pl_module.named_parameters()}
        with torch.no_grad():
            for k, v in pl_module.named_parameters():
                v.copy_(self.ema[k])

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        with torch.no_grad():
            for k, v in pl_module.named_parameters():
                if k in self.saved:
                    v.copy_(self.saved[k])


def test_an_ema_swapped_back_beside_statistics_moved_after_the_audit_is_no_change(tmp_path) -> None:  # noqa: ANN001
    assert _said(_Net(forward_at_end=True), tmp_path, before=(_SwappingEMA(),)) == []


def test_statistics_moved_after_the_audit_of_a_lazy_model_are_no_change(tmp_path) -> None:  # noqa: ANN001
    assert _said(_Net(lazy=True, forward_at_end=True), tmp_path) == []


def test_a_carried_state_registered_as_none_and_reset_to_none_is_no_change(tmp_path) -> None:  # noqa: ANN001
    assert _said(_Net(carried=True, forward_at_end=True), tmp_path) == []


def test_an_edit_in_a_buffer_of_a_lazy_model_is_still_warned_about_by_its_name(tmp_path) -> None:  # noqa: ANN001
    said = _said(_Net(lazy=True, forward_at_end=True, carried=True, edit=True), tmp_path)
    assert len(said) == 1, said
    assert f"{SAID} (at the start of epoch 1), in model.3.delta:" in said[0]


def test_buffers_written_by_name_where_the_names_changed() -> None:
    model = _Net(lazy=True, carried=True).train()
    start = weight_sums(model)  # no h, no built weight yet
    with torch.no_grad():
        model(X[:16])
    assert "model.0.weight" not in start[0] and "h" not in start[0]
    # the state set and the statistics moved; the weights built are no buffers
    assert buffers_written(start, weight_sums(model), model) == {"h", "model.1.running_mean", "model.1.running_var"}


def test_an_audited_epoch_start_reads_the_weights_once(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    callers: list[str] = []

    def counted(module: nn.Module) -> tuple:
        import inspect

        callers.append(inspect.stack()[1].function)
        return weight_sums(module)

    monkeypatch.setattr(audit_module, "weight_sums", counted)
    monkeypatch.setattr(fit_checks, "weight_sums", counted)
    assert _said(_Net(), tmp_path) == []
    assert callers.count("warn_changed_after_audit") == 1  # the end of training's check only
    assert callers.count("on_train_epoch_start") == 2
