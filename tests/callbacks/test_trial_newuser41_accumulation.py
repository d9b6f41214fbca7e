"""Memory-saving training with the audit callback (a new user's trial): gradient accumulation, ``bf16-mixed`` and a
block checkpointed by ``torch.utils.checkpoint`` (non-reentrant) in every mode, under a ``CausalRepairModule`` with a
counterfactual fairness term. The fit is bit-identical with and without ``CausalAuditCallback`` (same seed), and the
last audit's values equal those of the same audits run on the final weights in float32 outside the Trainer (the
callback audits in the weights' dtype, outside autocast). Guards of what works (docs/your_model.md says so)."""

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import (
    AttributeFlip,
    CaptumBaseline,
    CausalAuditCallback,
    CausalRepairModule,
    CounterfactualFairnessTerm,
    FairnessAudit,
    InputEffectAudit,
    UnitImportanceAudit,
)
from lightning_causal.audits import Probe
from tests.helpers.lightning import quick_trainer

COLUMNS = ["x0", "x1", "x2", "s"]


class _Checkpointed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(4, 8)
        self.block = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8), nn.ReLU())
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(checkpoint(self.block, torch.relu(self.inp(x)), use_reentrant=False))


def _data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    x[:, 3] = (torch.rand(n, generator=g) < 0.5).float()  # the sensitive column, which the labels use
    return x, (2 * x[:, 0] - x[:, 1] + x[:, 3] > 0).long()


def _audits(prefix: str) -> list:
    return [InputEffectAudit(ace_values=None), UnitImportanceAudit([prefix + "inp", prefix + "block.2"], top_k=3),
            CaptumBaseline(("IntegratedGradients", "Saliency")), FairnessAudit(AttributeFlip("s", columns=COLUMNS))]


def _fit(with_callback: bool) -> tuple[CausalRepairModule, CausalAuditCallback | None]:
    pl.seed_everything(0, verbose=False)
    net = _Checkpointed()
    module = CausalRepairModule(net, [CounterfactualFairnessTerm(AttributeFlip("s", columns=COLUMNS))], lr=1e-2)
    callback = CausalAuditCallback(_audits("model."), probe_size=16) if with_callback else None
    x, y = _data(64, 0)
    trainer = quick_trainer(max_epochs=2, accumulate_grad_batches=4, precision="bf16-mixed",
                            callbacks=[callback] if callback else [])
    trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True),
                DataLoader(TensorDataset(*_data(32, 1)), batch_size=16))
    return module, callback


def test_accumulation_bf16_and_checkpointing_train_alike_with_the_callback_and_audit_the_float32_weights():
    plain, _ = _fit(False)
    audited, callback = _fit(True)
    assert callback.audited_epochs == [0, 1]
    for (name, a), b in zip(plain.state_dict().items(), audited.state_dict().values()):
        assert torch.equal(a, b), name
    assert not torch.equal(plain.model.head.weight, _Checkpointed().head.weight)  # it trained
    probe = Probe(*(t[:16] for t in _data(32, 1)))  # the callback's: the first 16 validation samples
    for audit in _audits("model."):  # on the repair module in float32, outside the Trainer
        got, ref = callback.last_results[audit.name], audit.run(audited, probe)
        assert ref.scalars.keys() <= got.scalars.keys()  # the callback adds drift/* from the audit before
        for key, value in ref.scalars.items():
            assert got.scalars[key] == value or (value != value and got.scalars[key] != got.scalars[key]), (audit.name, key)
        for key, vector in ref.vectors.items():
            torch.testing.assert_close(got.vectors[key], vector, rtol=0, atol=0, equal_nan=True)
