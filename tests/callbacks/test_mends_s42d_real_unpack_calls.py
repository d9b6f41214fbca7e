"""74d23721 counted a batch's rows by running the user's ``unpack_batch`` on a ``meta`` copy of it first: one keeping a
state (a running input mean, a user's normaliser) stored a meta tensor there, the next real call failed ("Tensor on
device meta is not on the expected device cpu"), in the probe's read and in the repair module's fit, and the state was
left on meta; the calls per read went from 2 to 3 (one batch) and 4 to 7 (a ``DataLoader(batch_size=None)`` of 3
items). The reader now calls ``unpack_batch`` on copies of the batch's values only, once per batch read."""

import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from lightning_causal import CausalRepairModule
from lightning_causal.callbacks._probe import probe_from
from tests.helpers.lightning import trainer as quiet_trainer
from tests.helpers.training_spies import InputsReadingTerm


class RunningMean:
    """An ``unpack_batch`` that centres the inputs on a running mean of those it has seen, and records its calls."""

    def __init__(self, key):
        self.key, self.mean, self.seen = key, torch.tensor(0.0), []

    def __call__(self, b):
        self.seen.append((b[self.key].device.type, tuple(b[self.key].shape)))
        self.mean = 0.9 * self.mean + 0.1 * b[self.key].mean()
        return b[self.key] - self.mean, b["y" if self.key == "x" else 1], None


def test_a_stateful_unpack_batch_sees_the_batches_values_as_often_as_before():
    x = torch.arange(300.0).reshape(100, 3)
    unpack_batch = RunningMean(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probe = probe_from((x, torch.zeros(100, dtype=torch.long)), 8, unpack_batch, model=nn.Linear(3, 2))
    assert unpack_batch.seen == [("cpu", (8, 3)), ("cpu", (8, 3))]  # the batch counted (off its first rows), the probe's
    mean = 0.9 * (0.1 * x[:8].mean()) + 0.1 * x[:8].mean()  # by hand: the two calls' running mean
    torch.testing.assert_close(unpack_batch.mean, mean)
    torch.testing.assert_close(probe.inputs, x[:8] - mean)
    items = [{"x": torch.full((8, 3), float(i)), "y": torch.zeros(8, dtype=torch.long)} for i in range(3)]
    unpack_batch = RunningMean("x")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probe = probe_from(DataLoader(items, batch_size=None), 20, unpack_batch, model=nn.Linear(3, 2))
    # each item counted once, the 3 joined, the probe's 20 rows: 5 calls, as before 74d23721 (7 there)
    assert unpack_batch.seen == [("cpu", (8, 3))] * 3 + [("cpu", (24, 3)), ("cpu", (20, 3))]
    assert probe.inputs.shape == (20, 3) and unpack_batch.mean.device.type == "cpu"


def test_the_repair_module_fits_beside_a_stateful_unpack_batch(tmp_path):
    g = torch.Generator().manual_seed(0)
    items = [{"x": torch.randn(8, 3, generator=g), "y": torch.randint(0, 3, (8,), generator=g)} for _ in range(10)]
    unpack_batch = RunningMean("x")
    term = InputsReadingTerm()
    module = CausalRepairModule(nn.Linear(3, 3), [term], task_loss=F.cross_entropy, unpack_batch=unpack_batch)
    module.train_dataloader = lambda: DataLoader(items, batch_size=None)
    trainer = quiet_trainer(tmp_path, max_steps=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module)  # RuntimeError 'Tensor on device meta ...' at 74d23721
    assert trainer.global_step == 2 and unpack_batch.mean.device.type == "cpu"
    assert {device for device, _ in unpack_batch.seen} == {"cpu"} and term.inputs.shape == (80, 3)
