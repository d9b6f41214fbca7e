"""A LightningModule whose ``forward`` does not take the probe as the callback calls it (Hugging Face
dict batches read by the default ``unpack_batch``): the set-up error says how the model is called
and what to change."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader

from lightning_causal import CausalAuditCallback, InputEffectAudit
from tests.helpers.lightning import quick_trainer


class _BatchForward(pl.LightningModule):
    """``forward(batch)`` takes the whole dict batch, a common style in Lightning text modules."""

    def __init__(self) -> None:
        super().__init__()
        self.emb, self.head = nn.Embedding(10, 4), nn.Linear(4, 2)

    def forward(self, batch):
        mask = batch["attention_mask"].unsqueeze(-1).float()
        return self.head((self.emb(batch["input_ids"]) * mask).sum(1))

    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(self(batch), batch["labels"])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_a_forward_that_takes_the_batch_dict_is_told_how_the_audits_call_it(tmp_path):
    """The message was only "The probe of shape [4, 6] is rejected by the model: forward() got an unexpected
    keyword argument 'attention_mask'", naming neither the call nor `unpack_batch`."""
    ids = torch.randint(1, 10, (8, 6))
    items = [{"input_ids": ids[i], "attention_mask": torch.ones(6, dtype=torch.long), "labels": ids[i, 0] % 2} for i in range(8)]
    cb = CausalAuditCallback([InputEffectAudit(baseline=0, ace_values=None)], probe=DataLoader(items), probe_size=4,
                             report_dir=tmp_path)
    with pytest.raises(MisconfigurationException, match=r"rejected by the model: .*The audits call _BatchForward\.forward as "
                       r"`model\(<tensor \[4, 6\]>, attention_mask=\.\.\.\)`.*`forward\(self, input_ids, attention_mask=None\)`"
                       r".*`unpack_batch=`"):
        quick_trainer(callbacks=[cb], max_epochs=1).fit(_BatchForward(), DataLoader(items, batch_size=4))


def _samples(n: int = 8):
    ids = torch.randint(1, 10, (n, 6), generator=torch.Generator().manual_seed(0))
    return ids, [{"input_ids": ids[i], "attention_mask": torch.ones(6, dtype=torch.long), "labels": ids[i, 0] % 2} for i in range(n)]


def test_a_list_of_samples_is_read_as_samples_not_as_a_batch():
    """A list of sample dicts (what ``DataLoader(samples)`` takes) was read as a batch: every sample's
    tensors cut to their first ``size`` tokens (8 "samples" of 4 tokens each), or an IndexError on a
    0-dim label; tuples ``(x_i, y_i)`` with 0-dim labels likewise."""
    from lightning_causal.data_reading import read_samples

    ids, items = _samples()
    batch = read_samples(items, 4)
    assert torch.equal(batch["input_ids"], ids[:4]) and torch.equal(batch["labels"], ids[:4, 0] % 2)
    pairs = [(ids[i].float(), ids[i, 0] % 2) for i in range(8)]
    x, y = read_samples(pairs, 3)
    assert torch.equal(x, ids[:3].float()) and torch.equal(y, ids[:3, 0] % 2)
    x, y = read_samples([ids.float(), ids[:, 0] % 2], 3)  # a batch given as a list is still a batch
    assert torch.equal(x, ids[:3].float()) and torch.equal(y, ids[:3, 0] % 2)


def test_a_list_of_hugging_face_samples_is_a_probe(tmp_path):
    class _Keywords(_BatchForward):
        def forward(self, input_ids, attention_mask=None):
            return super().forward({"input_ids": input_ids, "attention_mask": attention_mask})

        def training_step(self, batch, batch_idx):
            return nn.functional.cross_entropy(self(batch["input_ids"], batch["attention_mask"]), batch["labels"])

    _, items = _samples()
    cb = CausalAuditCallback([InputEffectAudit(baseline=0, ace_values=None)], probe=items, probe_size=4, report_dir=tmp_path)
    quick_trainer(callbacks=[cb], max_epochs=1).fit(_Keywords(), DataLoader(items, batch_size=4))
    assert cb.last_results["input_effect"].vectors["mean_abs_effect"].shape == (6,)
