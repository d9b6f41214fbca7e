"""Audits of a float32 model trained under ``torch.set_float32_matmul_precision("medium")`` (a new user's memory- and
time-saving trial).

Before: "medium" makes a CPU's float32 matrix products bfloat16 ones (oneDNN; a GPU's TF32 ones), whose rounding
changes with the rows that share a pass, so ``unit_effects`` refused the model with a StackedRowsError blaming control
flow on a batch statistic (max |difference| 0.17 between a row alone and in a stacked pass) and advising
``max_batch_size=1``, and every other number held bfloat16 rounding. Now the estimators compute in float32 at full
precision (as the audits of a ``precision="bf16-mixed"`` fit do) and give the numbers of the default precision, the
user's setting put back after each call, also on errors, so training is unchanged.
On a CPU without bfloat16 products (no AVX512-BF16/AMX) "medium" changes nothing and these tests pass either way.
"""

import lightning.pytorch as pl
import pytest
import torch
from torch import nn

from lightning_causal import CausalAuditCallback, InputEffectAudit, UnitImportanceAudit
from lightning_causal.baselines import attribute
from lightning_causal.causal import input_effects, unit_effects


@pytest.fixture
def medium():
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    yield
    torch.set_float32_matmul_precision(before)


def _model_and_x() -> tuple[nn.Module, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return model, torch.randn(24, 64, generator=g)


def _answers(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    return [unit_effects(model, x, "2"), unit_effects(model, x, "2", method="atp"),
            input_effects(model, x, torch.arange(64).view(1, 64) // 8), attribute(model, x, "IntegratedGradients")]


def test_estimates_under_medium_matmul_precision_equal_those_at_full_precision(medium):
    model, x = _model_and_x()
    torch.set_float32_matmul_precision("highest")
    full = _answers(model, x)
    torch.set_float32_matmul_precision("medium")
    for got, want in zip(_answers(model, x), full):
        assert torch.equal(got, want)
    assert torch.get_float32_matmul_precision() == "medium"


def test_the_users_precision_is_put_back_after_an_error(medium):
    class Fails(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        unit_effects(nn.Sequential(nn.Linear(4, 4), Fails()), torch.randn(2, 4), "0")
    assert torch.get_float32_matmul_precision() == "medium"


class _Module(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_a_fit_under_medium_precision_is_unchanged_by_the_callback(medium, tmp_path):
    g = torch.Generator().manual_seed(1)
    data = torch.utils.data.TensorDataset(torch.randn(64, 64, generator=g), torch.randint(0, 10, (64,), generator=g))
    weights = []
    for callbacks in ([], [CausalAuditCallback([InputEffectAudit(feature_mask=torch.arange(64).view(1, 64) // 16),
                                                UnitImportanceAudit(["net.1"])], probe_size=16)]):
        pl.seed_everything(0)
        module = _Module()
        trainer = pl.Trainer(max_epochs=2, logger=False, callbacks=callbacks, enable_progress_bar=False,
                             enable_model_summary=False, enable_checkpointing=False, default_root_dir=tmp_path)
        trainer.fit(module, torch.utils.data.DataLoader(data, batch_size=16), torch.utils.data.DataLoader(data, batch_size=32))
        weights.append([p.detach().clone() for p in module.parameters()])
        assert torch.get_float32_matmul_precision() == "medium"
    assert all(torch.equal(a, b) for a, b in zip(*weights))
