"""``CausalRepairModule`` reads its terms' set-up inputs from the train dataloader itself (the first samples of its
data), and a term's set-up warnings named samples "of `train_inputs`", rows of a tensor the user never passed (a
``BackdoorSuppressionTerm(None)`` on a top-1-gated model: "on the samples [0, 1, ...] of `train_inputs` (32 of 32 ...)").
Such warnings and errors now say what those inputs are in the user's terms: the training inputs the module read, the
first samples of the train dataloader's data in its sampler's order, and ``setup_inputs=`` as the way to give one's
own (given so, nothing is added)."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import BackdoorSuppressionTerm
from lightning_causal.repair.module import CausalRepairModule
from tests.repair.test_leftovers_s33c_top1_contrast import _Top1, _x


def _said(**options) -> list[str]:
    x, model = _x(), _Top1()
    with torch.no_grad():
        y = model(x).argmax(1)  # the classes it keeps: a finite task loss
    module = CausalRepairModule(model, [BackdoorSuppressionTerm(None, reverse_options={"steps": 5})], **options)
    trainer = pl.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=16))
    return [str(w.message) for w in caught if "feature-shifted copy rule out" in str(w.message)]


def test_samples_of_the_inputs_the_module_read_are_named_in_the_users_terms() -> None:
    (said,) = _said()
    assert "of `train_inputs` (32 of 32" in said
    assert said.endswith("(`train_inputs`: the 32 training inputs CausalRepairModule read for the terms' set-up, the "
                         "first 32 samples a new iterator of the train dataloader gives: sample k is the dataset's "
                         "sample k under a sequential sampler, not under shuffle=True (a random sampler's draw); "
                         "`CausalRepairModule(setup_inputs=)` gives your own)")


def test_inputs_given_by_the_user_are_theirs() -> None:
    (said,) = _said(setup_inputs=_x())
    assert said.endswith("contrastive detection is skipped (`contrast=False` turns it off)")
