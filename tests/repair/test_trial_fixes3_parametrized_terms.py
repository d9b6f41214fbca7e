"""Trial "fixes3": ``CausalRepairModule`` with a fairness or backdoor term on a new user's CNN whose layers use
``weight_norm`` / ``spectral_norm``, or that runs in ``torch.channels_last``. Nothing broke: each term's loss
equals the one of a plain contiguous CNN with the model's effective weights, and a repair fit with the audit
callback ends with the weights (spectral_norm's power-iteration vectors ``u``, ``v`` included, which any
train-mode pass would move) of the same fit without it. These tests keep it so."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from lightning_causal import (
    BackdoorSuppressionTerm,
    CausalAuditCallback,
    CausalRepairModule,
    CounterfactualFairnessTerm,
    FairnessAudit,
    UnitImportanceAudit,
)
from lightning_causal.causal import Trigger
from tests.callbacks.test_trial_fixes3_parametrized_cnn import Net, plain_copy
from tests.helpers.lightning import digits, loaders, trainer


def _mirror(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-1)


def _trigger() -> Trigger:
    mask = torch.zeros(1, 8, 8)
    mask[:, -2:, -2:] = 1.0
    return Trigger(mask, torch.ones(1, 8, 8), target=0)


@pytest.mark.parametrize("kind", ["weight_norm", "spectral_norm", "channels_last"])
def test_the_terms_equal_those_of_the_plain_cnn(kind):
    torch.manual_seed(0)
    net = Net(kind).eval()
    if kind == "channels_last":
        net = net.to(memory_format=torch.channels_last)
    plain = plain_copy(net)
    x, y = digits()[0][:32], digits()[1][:32]
    fair = CounterfactualFairnessTerm(_mirror)
    torch.testing.assert_close(fair.loss(net, x, y), fair.loss(plain, x, y), rtol=1e-5, atol=1e-7)
    ours, reference = BackdoorSuppressionTerm(_trigger(), augment=None), BackdoorSuppressionTerm(_trigger(), augment=None)
    ours.setup(net)
    reference.setup(plain)
    torch.testing.assert_close(ours.loss(net, x, y), reference.loss(plain, x, y), rtol=1e-5, atol=1e-7)
    assert ours.last_parts == pytest.approx(reference.last_parts, rel=1e-4, abs=1e-7)


def _repair_fit(root, audit: bool) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    net = Net("spectral_norm")
    callbacks = [CausalAuditCallback([FairnessAudit(_mirror), UnitImportanceAudit(["model.conv1"])], probe_size=16)] if audit else []
    train, val = loaders(batch_size=32)
    trainer(root, max_epochs=1, logger=TensorBoardLogger(root), callbacks=callbacks).fit(
        CausalRepairModule(net, [CounterfactualFairnessTerm(_mirror, weight=2.0)], lr=0.01), train, val)
    if audit:
        assert callbacks[0].audited_epochs == [0] and "cf_gap" in callbacks[0].last_results["fairness"].scalars
    return {k: v.clone() for k, v in net.state_dict().items()}


def test_the_audit_leaves_a_spectral_norm_repair_as_it_was(tmp_path):
    audited, alone = _repair_fit(tmp_path / "a", True), _repair_fit(tmp_path / "b", False)
    assert any(k.endswith("_u") for k in alone)  # spectral_norm's power-iteration vectors are in the state
    assert audited.keys() == alone.keys()
    for k, v in alone.items():
        assert torch.equal(audited[k], v), k
