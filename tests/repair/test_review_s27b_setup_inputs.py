"""Review of the change, newuser47's left fault: a term that reads training inputs at set-up
(``needs_train_inputs``: BackdoorSuppressionTerm(trigger=None)) read up to 512 samples from a new iterator of a training
IterableDataset; a stream over a shared source (a generator, a queue) never gave those samples to training
(/tmp/newuser47/oneshot.py: an epoch trained on 64 of 400 samples). ``CausalRepairModule(setup_inputs=)`` gives the
set-up its inputs, and a fit that reads a stream without them warns, naming it."""

import re
import warnings

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

from lightning_causal.models import LightningClassifier
from lightning_causal.repair import CausalRepairModule
from tests.helpers.training_spies import BatchSpy, InputsReadingTerm

X = torch.randn(40, 3, generator=torch.Generator().manual_seed(0))
Y = (X[:, 0] > 0).long()


class _OneShot(IterableDataset):
    """A stream over a shared source: each sample is read once, whichever iterator reads it."""

    def __init__(self) -> None:
        self.pos = 0

    def __iter__(self):
        while self.pos < len(X):
            i = self.pos
            self.pos += 1
            yield X[i], Y[i]


class _Again(IterableDataset):
    """A stream whose every iter() starts again."""

    def __iter__(self):
        return iter(zip(X, Y))


class _Resumable(_OneShot):
    """A stream that keeps its position (state_dict/load_state_dict): the set-up's read gives it back."""

    def state_dict(self):
        return {"pos": self.pos}

    def load_state_dict(self, state):
        self.pos = state["pos"]


def _fit(module, data, **trainer_args):
    seen = BatchSpy()
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, callbacks=[seen], **trainer_args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(module, DataLoader(data, batch_size=8))
    return sum(len(x) for x in seen.seen), [str(w.message) for w in caught if "setup_inputs" in str(w.message)]


def test_setup_inputs_leave_a_one_shot_stream_whole_to_training():
    given = X[:5] * 10
    term = InputsReadingTerm()
    rows, said = _fit(CausalRepairModule(nn.Linear(3, 2), [term], setup_inputs=given), _OneShot())
    assert rows == 40 and not said  # before: TypeError (no setup_inputs); without them 8 of 40 rows trained
    assert torch.equal(term.inputs, given)


def test_a_stream_read_at_set_up_is_warned_about_naming_setup_inputs():
    term = InputsReadingTerm()
    rows, said = _fit(CausalRepairModule(nn.Linear(3, 2), [term]), _OneShot())
    assert rows == 8 and term.inputs.shape == (32, 3)  # the set-up took the other 32 rows
    assert len(said) == 1 and "read 32 samples" in said[0] and "term 'reads' (InputsReadingTerm)" in said[0]
    assert "IterableDataset (_OneShot)" in said[0]


def test_a_re_iterable_stream_and_a_map_style_dataset_still_set_up_from_the_data():
    term = InputsReadingTerm()
    rows, said = _fit(CausalRepairModule(nn.Linear(3, 2), [term]), _Again())
    assert rows == 40 and torch.equal(term.inputs, X) and len(said) == 1  # the stream read again: nothing lost, a warning
    term = InputsReadingTerm()
    rows, said = _fit(CausalRepairModule(nn.Linear(3, 2), [term]), _Resumable())
    assert rows == 40 and torch.equal(term.inputs, X[8:]) and not said  # its position given back: nothing lost, no warning
    term = InputsReadingTerm()
    rows, said = _fit(CausalRepairModule(nn.Linear(3, 2), [term]), TensorDataset(X, Y))
    assert rows == 40 and torch.equal(term.inputs, X) and not said  # read by index: no warning
    term = InputsReadingTerm()  # given beside a map-style dataset: the given inputs, in the training batches' dtype
    rows, said = _fit(CausalRepairModule(nn.Linear(3, 2).double(), [term], setup_inputs=X[:3]), TensorDataset(X, Y),
                      precision="64-true")
    assert torch.equal(term.inputs, X[:3].double()) and not said


def test_wrap_takes_setup_inputs_and_bad_ones_are_refused():
    term = InputsReadingTerm()
    rows, said = _fit(CausalRepairModule.wrap(LightningClassifier(nn.Linear(3, 2)), [term], setup_inputs=X[:4]),
                      _OneShot())
    assert rows == 40 and torch.equal(term.inputs, X[:4]) and not said
    for bad, shown in (((X, X), "a tuple"), (X[:0], "shape [0, 3]"), (torch.tensor(1.0), "shape []")):
        with pytest.raises(MisconfigurationException, match="`setup_inputs`.*" + re.escape(shown)):
            CausalRepairModule(nn.Linear(3, 2), [InputsReadingTerm()], setup_inputs=bad)


def test_setup_inputs_of_another_sample_shape_than_the_batches_are_refused_naming_them():
    # review_s27j: X[:4, :2] beside batches of 3 features went to the term's setup as they were (Neural Cleanse on a
    # conv net: "Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: [2, 64]", no name)
    term = InputsReadingTerm()
    with pytest.raises(MisconfigurationException, match=r"`setup_inputs`.*inputs, \[N, 3\], but got \[4, 2\]"):
        _fit(CausalRepairModule(nn.Linear(3, 2), [term], setup_inputs=X[:4, :2]), TensorDataset(X, Y))
    assert term.inputs is None  # refused before any set-up read them
