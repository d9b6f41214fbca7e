"""The repair module's set-up read its training inputs with ``read_samples`` alone, counting each batch by its first
tensor (session 41 gave the audits' probe the rows ``unpack_batch`` reads, ``rows_of``/``whole_of``, but not this
reader): items ``{"w": [3], "x": [8, 3], "y": [8]}`` (class weights first, the same in every batch) were counted as 3
samples each, ``x`` taken for a tensor that is no samples', and the items' differing ``x`` stopped the read at the first
batch: the terms were set up on 8 inputs, not 512 (a warning naming the callback's ``probe=``). The set-up now reads
through the audits' reader (``unpacked_rows.input_rows``)."""

import warnings

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from lightning_causal import CausalRepairModule
from tests.helpers.training_spies import InputsReadingTerm


def _items(n: int = 80) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    w = torch.tensor([1.0, 2.0, 0.5])
    return [{"w": w, "x": torch.randn(8, 3, generator=g), "y": torch.randint(0, 3, (8,), generator=g)} for _ in range(n)]


def test_the_setup_counts_the_batches_by_the_input_unpack_batch_reads(tmp_path):
    torch.manual_seed(0)
    items = _items()
    term = InputsReadingTerm()
    module = CausalRepairModule(nn.Linear(3, 3), [term], task_loss=F.cross_entropy,
                                unpack_batch=lambda b: (b["x"], b["y"], None))
    module.train_dataloader = lambda: DataLoader(items, batch_size=None)
    trainer = pl.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(module)
    assert term.inputs is not None and term.inputs.shape == (512, 3)  # 8 before: the first batch alone
    torch.testing.assert_close(term.inputs, torch.cat([i["x"] for i in items])[:512])
    assert not [w for w in caught if "The probe holds" in str(w.message)]
