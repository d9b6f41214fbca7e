"""A sampler that advances its own state in ``__iter__`` (an epoch counter it seeds its order with, as
many custom training samplers do): reading the probe (a fit without validation) or a repair term's
training inputs iterated that sampler, so training's first epoch got the order of its second one, and
the weights changed with the callback. The reads now iterate a copy of the sampler."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Sampler, TensorDataset

from lightning_causal import CausalRepairModule
from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks import CausalAuditCallback
from tests.helpers.training_spies import BatchSpy, InputsReadingTerm

_G = torch.Generator().manual_seed(0)
_X = torch.randn(32, 4, generator=_G)
_Y = (_X[:, 0] > 0).long()


class _EpochSampler(Sampler):
    """A new permutation each epoch, seeded by the epoch it counts itself."""

    def __init__(self, n: int) -> None:
        self.n, self.epoch = n, 0

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(100 + self.epoch)).tolist()
        self.epoch += 1
        return iter(order)


def _order(epoch: int) -> list[int]:
    return torch.randperm(32, generator=torch.Generator().manual_seed(100 + epoch)).tolist()


class _Net(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        self.batches: list[torch.Tensor] = []

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        self.batches.append(x.clone())
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _trainer(callbacks=()):
    return pl.Trainer(max_epochs=2, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, callbacks=list(callbacks))


def test_the_probe_read_from_a_self_advancing_sampler_leaves_training_its_order(tmp_path):
    torch.manual_seed(0)
    module = _Net()
    sampler = _EpochSampler(32)
    cb = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=5, report_dir=tmp_path)
    _trainer([cb]).fit(module, DataLoader(TensorDataset(_X, _Y), batch_size=8, sampler=sampler))
    assert cb.probe_origin == "train_dataloader" and cb.audited_epochs == [0, 1]
    assert sampler.epoch == 2  # one pass per training epoch, none for the probe
    assert torch.equal(torch.cat(module.batches[:4]), _X[_order(0)])  # epoch 0 in the sampler's first order
    assert torch.equal(torch.cat(module.batches[4:]), _X[_order(1)])
    assert torch.equal(cb.probe.first, _X[_order(0)[:5]])  # the first samples the sampler gives


def test_a_repair_terms_read_from_a_self_advancing_sampler_leaves_training_its_order():
    torch.manual_seed(0)
    term, spy, sampler = InputsReadingTerm(), BatchSpy(), _EpochSampler(32)
    module = CausalRepairModule(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), [term], lr=1e-2)
    _trainer([spy]).fit(module, DataLoader(TensorDataset(_X, _Y), batch_size=8, sampler=sampler))
    assert sampler.epoch == 2
    assert torch.equal(torch.cat(spy.seen[:4]), _X[_order(0)])
    assert torch.equal(torch.cat(spy.seen[4:]), _X[_order(1)])
    assert torch.equal(term.inputs, _X[_order(0)])  # the loader's first batches, as its first epoch draws them
