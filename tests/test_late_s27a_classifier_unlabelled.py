"""LightningClassifier on batches without labels: ``trainer.test`` / ``trainer.validate`` on a ``TensorDataset(x)``
(batches ``[x]``) stopped with a bare "not enough values to unpack (expected 2, got 1)" from its step's
``x, y = batch``. Such evaluation batches are skipped, as CausalRepairModule's evaluation steps skip them; a
training batch without labels, or a batch of another form, is refused naming the forms taken."""

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.models import LightningClassifier


def _trainer():
    return pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                      max_epochs=1, accelerator="cpu")


def _net():
    torch.manual_seed(0)
    return nn.Linear(3, 2)


@pytest.mark.parametrize("stage", ["test", "validate"])
def test_evaluation_on_batches_without_labels_is_skipped(stage):
    x = torch.randn(8, 3)
    trainer = _trainer()
    results = getattr(trainer, stage)(LightningClassifier(_net()), DataLoader(TensorDataset(x), batch_size=4),
                                      verbose=False)
    assert results == [{}]


def test_an_unlabelled_batch_among_labelled_ones_is_skipped_and_the_labelled_are_scored():
    # the test loss is the mean over the labelled batch alone: the unlabelled one adds nothing
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 1, 0])
    clf = LightningClassifier(_net())
    with torch.no_grad():
        expected = float(F.cross_entropy(clf.model(x), y))
    batches = [[torch.randn(4, 3)], (x, y), torch.randn(5, 3)]
    results = _trainer().test(clf, DataLoader(batches, batch_size=None), verbose=False)
    assert results[0]["test_loss"] == pytest.approx(expected)
    assert set(results[0]) == {"test_loss", "test_acc"}


def test_training_on_batches_without_labels_is_refused_naming_the_batches_taken():
    clf = LightningClassifier(_net())
    with pytest.raises(MisconfigurationException, match=r"training batch holds no labels \(a list of 1 \(\[4, 3\]\)\).*`\(x, y\)`"):
        clf.training_step([torch.randn(4, 3)], 0)


def test_a_batch_of_another_form_is_refused_naming_the_batches_taken():
    clf = LightningClassifier(_net())
    with pytest.raises(MisconfigurationException, match=r"takes batches `\(x, y\)`.*a test batch is a tuple of 3"):
        clf.test_step((torch.randn(4, 3), torch.tensor([0, 1, 1, 0]), torch.ones(4)), 0)
    with pytest.raises(MisconfigurationException, match=r"a val batch is a mapping with keys \['x', 'y'\]"):
        clf.validation_step({"x": torch.randn(4, 3), "y": torch.tensor([0, 1, 1, 0])}, 0)
