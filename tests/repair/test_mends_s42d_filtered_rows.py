"""An ``unpack_batch`` that filters rows (``b["x"][b["keep"]]``: a label to ignore) on ``DataLoader(batch_size=None)``
items of 8 rows, 6 kept, reads 6 samples of each, a number of rows no tensor of the item holds: the reader took every
tensor for one passed whole (an episode's support set), the items' differing tensors stopped the read at the first one,
and the repair module's terms were set up on 6 inputs (384 before 74d23721), under a warning naming an episode's support
set; the audits' probe read 4 of 10 alike since session 41. Such items are now joined along their rows until they hold
the samples asked for."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from lightning_causal import CausalRepairModule
from lightning_causal.callbacks._probe import probe_from
from tests.helpers.lightning import trainer as quiet_trainer
from tests.helpers.training_spies import InputsReadingTerm


def _items(n: int) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [{"x": torch.randn(8, 3, generator=g), "y": torch.randint(0, 3, (8,), generator=g),
             "keep": torch.arange(8) % 4 != 0} for _ in range(n)]


def _kept(b):
    return b["x"][b["keep"]], b["y"][b["keep"]], None


def test_the_setup_joins_filtered_items_until_it_holds_its_inputs(tmp_path):
    items = _items(100)
    torch.manual_seed(0)
    term = InputsReadingTerm()
    module = CausalRepairModule(nn.Linear(3, 3), [term], task_loss=F.cross_entropy, unpack_batch=_kept)
    module.train_dataloader = lambda: DataLoader(items, batch_size=None)
    trainer = quiet_trainer(tmp_path, max_steps=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(module)
    assert term.inputs is not None and term.inputs.shape == (512, 3)  # 6 before: the first item alone
    torch.testing.assert_close(term.inputs, torch.cat([i["x"][i["keep"]] for i in items])[:512])
    assert not [w for w in caught if "The probe holds" in str(w.message)]


def test_the_probe_joins_filtered_items_and_refuses_a_fixed_count_of_each():
    items = _items(10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        probe = probe_from(DataLoader(items, batch_size=None), 10, _kept, model=nn.Linear(3, 2))
    assert torch.equal(probe.inputs, torch.cat([i["x"][i["keep"]] for i in items])[:10])  # 6 of them before
    assert torch.equal(probe.labels, torch.cat([i["y"][i["keep"]] for i in items])[:10])
    assert not [w for w in caught if "The probe holds" in str(w.message)]
    # 4 rows of each item whatever it holds: joined, the items would read as 4 samples, not 4 each; the first, warned
    with pytest.warns(UserWarning, match=r"batches joined along their 8 rows read as 4 samples, not the 12"):
        probe = probe_from(DataLoader(items, batch_size=None), 10, lambda b: (b["x"][:4], b["y"][:4], None),
                           model=nn.Linear(3, 2))
    assert torch.equal(probe.inputs, items[0]["x"][:4])
