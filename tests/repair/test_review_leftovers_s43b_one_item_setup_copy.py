"""655d030c stopped joining a ``DataLoader(batch_size=None)``'s one item to itself (a copy of the whole item, to be read
again), but the reader then returned views of the dataset's own item: the repair set-up hands them to the user's
``unpack_batch`` uncopied, and one writing in place (``b[0].mul_(2)``) wrote into the data training reads next (the
item's x multiplied 32-fold after one step where 8-fold before: two writes more). The one item's samples are now copied
once cut (the rows read, not the item)."""

import warnings

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from lightning_causal import CausalRepairModule
from lightning_causal.data_reading import read_samples
from lightning_causal.unpacked_rows import input_rows
from tests.helpers.training_spies import InputsReadingTerm


def _shares(t: torch.Tensor, item: torch.Tensor) -> bool:
    return t.untyped_storage().data_ptr() == item.untyped_storage().data_ptr()


def test_the_setup_reads_a_copy_of_the_one_items_rows(tmp_path):
    x, y = torch.ones(600, 3), torch.zeros(600, dtype=torch.long)
    seen: list[tuple[int, bool]] = []

    def unpack(b):
        seen.append((b[0].shape[0], _shares(b[0], x)))
        b[0].mul_(2)  # writes in place
        return b[0].clone(), b[1], None

    torch.manual_seed(0)
    module = CausalRepairModule(nn.Linear(3, 3), [InputsReadingTerm()], task_loss=F.cross_entropy, unpack_batch=unpack)
    module.train_dataloader = lambda: DataLoader([(x, y)], batch_size=None)
    trainer = pl.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module)
    setup = [shared for rows, shared in seen if rows == 512]
    assert setup and not any(setup)  # the set-up's 512 rows: a copy (views of the dataset's item before)


def test_one_filtered_item_is_read_as_a_copy():
    x, keep = torch.arange(30.0).reshape(10, 3), torch.arange(10) % 2 == 0
    rows_of, whole_of = input_rows(None, lambda b: (b[0][b[1]], b[0][b[1]][:, 0], None))
    read = read_samples(DataLoader([(x, keep)], batch_size=None), 4, loader_order=True, rows_of=rows_of, whole_of=whole_of)
    assert torch.equal(read[0], x) and torch.equal(read[1], keep) and not _shares(read[0], x)
    read[0].mul_(2)
    assert torch.equal(x, torch.arange(30.0).reshape(10, 3))
