"""repair_rng_s27: CausalRepairModule's set-up read ran the user's ``unpack_batch`` outside the restored section of
the read (``train_inputs``): an ``unpack_batch`` that draws as it makes the model's inputs (noise from the global
torch or NumPy stream, or from a generator the model holds) advanced those streams by as many draws as the rows read,
so a term that reads training inputs at set-up (512 rows) trained other weights than a term that reads none (one row
checked) or ``setup_inputs=`` (one row), with the same seed; a training stream (``IterableDataset``) had its first
batches unpacked twice, once outside. /tmp/repair_rng_s27/user.py: bit-identical False for global torch, the model's
generator and NumPy draws before, True after."""

import random
import warnings

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

from lightning_causal.repair import CausalRepairModule
from lightning_causal.repair.base import RepairTerm
from tests.helpers.training_spies import InputsReadingTerm

X = torch.randn(32, 3, generator=torch.Generator().manual_seed(0))
Y = (X[:, 0] > 0).long()


class _ReadsNothing(RepairTerm):
    """A term of weight 0 whose set-up reads nothing (the batches are only checked: one row unpacked)."""

    def __init__(self) -> None:
        super().__init__(weight=0.0, name="nothing")

    def loss(self, model, x, y):
        return model(x).sum() * 0.0


class _Net(nn.Module):
    """A classifier holding a generator of its own, which the batches' noise is drawn from too."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.gen = torch.Generator().manual_seed(5)

    def forward(self, x):
        return self.lin(x)


class _Again(IterableDataset):
    """A training stream whose every iter() starts again."""

    def __iter__(self):
        return iter(zip(X, Y))


def _drawing_unpack(net: _Net, closure_gen: torch.Generator):
    """An unpack_batch that makes noisy inputs from every stream a user may draw from, one draw per row."""

    def unpack(batch):
        x, y = batch
        n = x.shape
        noise = (torch.randn(n) + torch.randn(n, generator=net.gen) + torch.randn(n, generator=closure_gen)
                 + torch.from_numpy(np.random.randn(*n)).float() + random.random())
        return x + 0.1 * noise, y, None

    return unpack


def _streams(net, closure_gen):
    return (torch.get_rng_state(), net.gen.get_state(), closure_gen.get_state(), np.random.get_state()[1:3],
            random.getstate())


def _same_streams(a, b) -> list[bool]:
    return [torch.equal(a[0], b[0]), torch.equal(a[1], b[1]), torch.equal(a[2], b[2]),
            bool(np.array_equal(a[3][0], b[3][0]) and a[3][1] == b[3][1]), a[4] == b[4]]


def _trainer(**kwargs) -> pl.Trainer:
    return pl.Trainer(max_epochs=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                      enable_checkpointing=False, **kwargs)


def _fit(kind: str) -> dict[str, torch.Tensor]:
    pl.seed_everything(1, verbose=False)
    net = _Net()
    term = _ReadsNothing() if kind == "nothing" else InputsReadingTerm()
    module = CausalRepairModule(net, [term], unpack_batch=_drawing_unpack(net, torch.Generator().manual_seed(9)),
                                lr=0.1, **({"setup_inputs": X[:5]} if kind == "given" else {}))
    _trainer().fit(module, DataLoader(TensorDataset(X, Y), batch_size=8, shuffle=True))
    if kind == "reads":
        assert term.inputs.shape == (32, 3)  # the set-up read every row, unpacked (noisy), not the one row checked
    return {k: v.clone() for k, v in net.state_dict().items()}


def test_the_terms_set_up_read_gives_the_weights_of_a_fit_whose_set_up_reads_nothing():
    reads, nothing, given = _fit("reads"), _fit("nothing"), _fit("given")
    for other in (nothing, given):
        assert all(torch.equal(reads[k], other[k]) for k in reads)  # before: not bit-identical


class _Measured(Exception):
    """Stops the fit once the set-up is measured."""


class _Measure(pl.Callback):
    """Runs the module's set-up (on_train_start) between two readings of every stream, then stops the fit."""

    def __init__(self, closure_gen: torch.Generator) -> None:
        self.closure_gen = closure_gen
        self.same: list[bool] = []

    def on_train_start(self, trainer, pl_module):
        before = _streams(pl_module.model, self.closure_gen)
        pl_module.on_train_start()
        self.same = _same_streams(before, _streams(pl_module.model, self.closure_gen))
        raise _Measured  # the set-up above is all that is measured


def test_the_set_up_leaves_every_stream_the_unpack_batch_draws_from():
    for data, kind in ((TensorDataset(X, Y), "reads"), (TensorDataset(X, Y), "nothing"), (_Again(), "reads")):
        net, closure_gen = _Net(), torch.Generator().manual_seed(9)
        term = _ReadsNothing() if kind == "nothing" else InputsReadingTerm()
        measure = _Measure(closure_gen)
        module = CausalRepairModule(net, [term], unpack_batch=_drawing_unpack(net, closure_gen))
        with warnings.catch_warnings(), pytest.raises(_Measured):
            warnings.simplefilter("ignore")  # the stream's warning naming setup_inputs= (test_review_s27b_setup_inputs)
            _trainer(callbacks=[measure]).fit(module, DataLoader(data, batch_size=8))
        # global torch, the model's generator, the closure's, NumPy, random; before: the first three and NumPy moved
        assert measure.same == [True] * 5, (type(data).__name__, kind, measure.same)
