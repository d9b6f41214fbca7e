"""A mapping batch with a tensor the default unpack_batch passes nowhere (a second input 'meta'):
the probe silently left it out, and a model that needs it failed later with its own error."""

import warnings

import pytest
import torch
from torch.utils.data import DataLoader

from lightning_causal.callbacks._probe import probe_from


class Rows(torch.utils.data.Dataset):
    def __init__(self, keys):
        self.keys = keys

    def __len__(self):
        return 8

    def __getitem__(self, i):
        item = {"x": torch.full((3,), float(i)), "meta": torch.full((2,), float(i)), "y": torch.tensor(i % 2)}
        return {k: item[k] for k in self.keys}


def test_a_tensor_the_default_unpack_reads_nowhere_is_named_with_a_fix_that_passes_it():
    loader = DataLoader(Rows(("x", "meta", "y")), batch_size=4)
    with pytest.warns(UserWarning, match=r"hold \['meta'\] besides the inputs 'x' and the labels 'y'.*"
                                         r"unpack_batch=lambda batch: \(batch\['x'\], batch\['y'\], \{'meta': batch\['meta'\]\}\)"):
        probe = probe_from(loader, 4)
    assert probe.additional_forward_args is None
    fixed = probe_from(loader, 4, lambda batch: (batch["x"], batch["y"], {"meta": batch["meta"]}))  # the printed fix
    assert torch.equal(fixed.additional_forward_args["meta"], torch.arange(4.0).view(4, 1).expand(4, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        probe_from(DataLoader(Rows(("x", "y")), batch_size=4), 4)  # nothing left out: no warning
        hf = {"input_ids": torch.ones(4, 5, dtype=torch.long), "attention_mask": torch.ones(4, 5, dtype=torch.long),
              "token_type_ids": torch.zeros(4, 5, dtype=torch.long), "labels": torch.zeros(4, dtype=torch.long)}
        assert probe_from(hf, 4).additional_forward_args.keys() == {"attention_mask", "token_type_ids"}
