"""``torch.compile`` and the repair module: a compiled repair fits as the uncompiled one."""

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalRepairModule, CounterfactualFairnessTerm
from lightning_causal.causal import AttributeFlip

pytestmark = pytest.mark.filterwarnings("ignore")


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    x[:, 0] = (x[:, 0] > 0).float()  # a binary sensitive column
    return DataLoader(TensorDataset(x, (x[:, 1] > 0).long()), batch_size=16)


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


class _Module(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = _net()

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        loss = nn.functional.cross_entropy(self(batch[0]), batch[1])
        self.log("task", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val", nn.functional.cross_entropy(self(batch[0]), batch[1]))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(module):
    pl.seed_everything(0, verbose=False)
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, limit_train_batches=2, limit_val_batches=1)
    trainer.fit(module, _data(), _data())
    return trainer


def _term():
    return CounterfactualFairnessTerm(AttributeFlip(0), 0, weight=1.0)


@pytest.mark.parametrize("kind", ["wrap", "plain"])
def test_a_compiled_repair_module_fits_as_the_uncompiled_one(kind):
    weights = []
    for compiled in (False, True):
        if kind == "wrap":
            owner = _Module()
            repair = CausalRepairModule.wrap(owner, [_term()])
        else:
            owner = _net()
            repair = CausalRepairModule(owner, [_term()], lr=0.1)
        # before: TorchDynamo traced the repair's steps and failed ('method' object has no attribute '__dict__';
        # attempted to set_stance in a torch.compile region)
        trainer = _fit(torch.compile(repair, backend="eager") if compiled else repair)
        assert "repair/total" in trainer.callback_metrics
        weights.append({k: v.clone() for k, v in owner.state_dict().items()})
    for key, value in weights[0].items():
        assert torch.equal(value, weights[1][key]), key


def test_wrapping_a_compiled_module_names_the_fix():
    with pytest.raises(MisconfigurationException, match=r"torch.compile'd LightningModule.*torch.compile\(CausalRepairModule.wrap"):
        CausalRepairModule.wrap(torch.compile(_Module(), backend="eager"), [_term()])


def test_the_steps_keep_their_self_where_torchdynamo_unwraps_disabled_functions():
    # TorchDynamo before torch 2.5 (innermost_fn) follows `_torchdynamo_orig_callable` from the step Lightning compiles:
    # on a method whose function torch.compiler.disable marked, that led to the unbound function, and a compiled
    # repair module's validation_step(batch, batch_idx) lost its self ('missing ... batch_idx'; torch 2.3.1, 2.4.1)
    repair = CausalRepairModule(_net(), [_term()], lr=0.1)
    for name in ("training_step", "validation_step", "test_step"):
        fn = getattr(repair, name)
        while hasattr(fn, "_torchdynamo_orig_callable"):
            fn = fn._torchdynamo_orig_callable
        assert getattr(fn, "__self__", None) is repair, name
