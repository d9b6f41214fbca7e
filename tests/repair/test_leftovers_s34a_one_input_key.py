"""A zero-shot classifier (forward(pixels)) repaired with a BackdoorSuppressionTerm on mapping batches {"pixels",
"input_ids", "attention_mask", "label"} and the default unpack_batch (which reads input_ids, with the attention_mask as
a forward argument) was refused telling the user to use "its zero-shot classifier", the model they already pass. The
refusal now gives the unpack_batch that passes forward's one input, which runs; a CLIP-like two-tower model keeps the
way to its zero-shot classifier."""

import lightning as L
import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch.utils.data import DataLoader

from lightning_causal import BackdoorSuppressionTerm, CausalRepairModule, Trigger
from lightning_causal.repair.train_inputs import _check_forward_args
from tests.test_trial_newuser66_in_batch_scores import (
    ZeroShot,  # forward(pixels) over 5 class prompts kept as a buffer
)


def batches():
    g = torch.Generator().manual_seed(0)
    b = {"pixels": torch.rand(8, 1, 4, 4, generator=g), "input_ids": torch.randint(1, 7, (8, 3), generator=g),
         "attention_mask": torch.ones(8, 3, dtype=torch.long), "label": torch.arange(8) % 5}
    return DataLoader([{k: v[i] for k, v in b.items()} for i in range(8)], batch_size=4)


def fit(**kw):
    module = CausalRepairModule(ZeroShot(), [BackdoorSuppressionTerm(Trigger(torch.zeros(1, 4, 4), 1.0, target=0))], **kw)
    L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, accelerator="cpu").fit(module, batches())


def test_refusal_gives_the_unpack_batch_of_forwards_one_input_and_it_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MisconfigurationException) as err:
        fit()
    text = str(err.value)
    fix = "unpack_batch=lambda batch: (batch['pixels'], batch['label'], None)"
    assert f"pass `{fix}`" in text and "the model's forward takes one input, 'pixels'" in text and "'input_ids'" in text
    assert "zero-shot classifier" not in text
    fit(unpack_batch=eval(fix.split("=", 1)[1]))  # noqa: S307 - the refusal's own lambda


def test_two_towers_keep_the_way_to_their_zero_shot_classifier():
    batch = next(iter(batches()))
    term = BackdoorSuppressionTerm(Trigger(torch.zeros(1, 4, 4), 1.0, target=0))
    with pytest.raises(MisconfigurationException, match="for a CLIP-like two-tower model, its zero-shot classifier"):
        _check_forward_args({"attention_mask": batch["attention_mask"]}, [term], batch,
                            lambda pixels, input_ids, attention_mask: None)
