"""Leftovers of session 28 (repair): a ``CausalRepairModule`` subclass whose own ``on_validation_model_eval`` puts the
network in eval mode itself (``self.model.eval()``, not the module's ``eval()`` nor ``super()``) lost the reading of
the carried state after a validation loop, which the module's ``train(False)`` marks: a model whose state a validation
sets up kept running fused, was left with the joint batch's state (``h [16, 5]`` for batches of 8) and trained
otherwise than the same subclass calling ``super()`` (max |dw| 2.5e-3 after one epoch). The step now also reads the
state again where the fit's validation loop ran batches since it was read, whatever hooks the subclass overrides."""

from __future__ import annotations

import torch

from lightning_causal import CausalRepairModule
from lightning_causal.repair.carried_state import validation_batches
from tests.test_leftovers_s28a_validation_recheck import H, LazyStream, N, _fit, _term


class NetworkEval(CausalRepairModule):
    """Puts the network itself in eval mode for validation, and back."""

    def on_validation_model_eval(self) -> None:
        self.model.eval()

    def on_validation_model_train(self) -> None:
        self.model.train()


class SuperEval(CausalRepairModule):
    def on_validation_model_eval(self) -> None:
        super().on_validation_model_eval()


def _fitted(cls: type[CausalRepairModule]) -> tuple[CausalRepairModule, LazyStream]:
    torch.manual_seed(0)
    model = LazyStream()
    repair = cls(model, _term())
    _fit(repair)
    return repair, model


def test_a_subclass_that_puts_the_network_in_eval_mode_itself_reads_the_state_a_validation_set_up() -> None:
    repair, model = _fitted(NetworkEval)
    reference, ref_model = _fitted(SuperEval)
    assert repair._carried == reference._carried == (("h", (N, H)),)  # before: (), fused after the validation
    assert model.h.shape == (N, H)  # before: [16, 5], the joint batch's
    for (name, a), b in zip(model.state_dict().items(), ref_model.state_dict().values()):
        assert torch.equal(a, b), name  # before: max |dw| 2.5e-3
    assert torch.equal(model.h, ref_model.h)
    # read at the step after the first validation (5 batches of the 40 samples); once found, not read again
    assert repair._carried_validations == 5 and validation_batches(repair.trainer) == 10


def test_without_a_trainer_no_validation_is_counted() -> None:
    assert validation_batches(None) is None
    assert validation_batches(object()) is None  # internals missing: None, never an error
