"""A resumable stream (an ``IterableDataset`` keeping its position with ``state_dict``/``load_state_dict``,
as Lightning's docs suggest for mid-epoch resumption), read in the main process: a repair term's read of
training inputs advanced its position, so training started where the read stopped (one batch of four
here, the others consumed by the read). The read now gives such a dataset its state back."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from lightning_causal import CausalRepairModule
from tests.helpers.training_spies import BatchSpy, InputsReadingTerm

_X = torch.arange(32 * 3, dtype=torch.float32).reshape(32, 3) / 50.0
_Y = torch.arange(32) % 2


class _ResumableStream(IterableDataset):
    def __init__(self) -> None:
        self.position = 0

    def __iter__(self):
        while self.position < len(_X):
            i = self.position
            self.position += 1
            yield _X[i], _Y[i]

    def state_dict(self):
        return {"position": self.position}

    def load_state_dict(self, state):
        self.position = state["position"]


def test_a_terms_read_gives_a_resumable_stream_its_position_back():
    torch.manual_seed(0)
    term, spy, stream = InputsReadingTerm(), BatchSpy(), _ResumableStream()
    module = CausalRepairModule(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)), [term], lr=1e-2)
    pl.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False, callbacks=[spy]).fit(module, DataLoader(stream, batch_size=8))
    # the term read the stream to its end, from where it stood (Lightning's fetcher takes the first batch before
    # on_train_start)
    assert term.inputs is not None and 0 < len(term.inputs) and torch.equal(term.inputs, _X[len(_X) - len(term.inputs):])
    assert len(spy.seen) == 4  # and training still got all of it, from its start
    assert torch.equal(torch.cat(spy.seen), _X)
    assert stream.position == len(_X)
