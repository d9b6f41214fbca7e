"""A first validation dataloader whose dataset holds samples but that yields no batch (a sampler that selects none,
``drop_last`` of fewer samples than a batch) was read where Lightning validates on the next one: the fit stopped at
the callback's set-up ("Expected the fit's val_dataloaders[0] of 2 to hold samples ... got 0 samples"), or the audits
explained samples the fit never validates on; an empty first dataset was already passed over (3b0caa9c). Such a
dataloader holds no samples for the callback either: the next one is read, and where every validation dataloader
holds none, the training data, as Lightning validates on nothing."""


import torch
from torch.utils.data import DataLoader

from tests.test_leftovers_s28b_empty_first_val import _data, _fit


def test_a_first_loader_whose_sampler_selects_no_sample_is_passed_over(tmp_path, caplog):
    val = [DataLoader(_data(8), sampler=[], batch_size=4), DataLoader(_data(6, start=100.0), batch_size=4)]
    cb, model, out = _fit(tmp_path, val, caplog)
    assert set(model.validated) == {1} and cb.audited_epochs == [0]
    assert cb.probe_origin == "val_dataloaders[1] of 2"
    assert torch.equal(cb.probe.first, _data(6, start=100.0).tensors[0][:3])
    assert "explains val_dataloaders[1] of 2 (the first one holds no samples)" in out


def test_a_first_loader_that_drops_its_only_partial_batch_is_passed_over(tmp_path, caplog):
    val = [DataLoader(_data(3), batch_size=4, drop_last=True), DataLoader(_data(6, start=100.0), batch_size=4)]
    cb, model, _ = _fit(tmp_path, val, caplog)
    assert set(model.validated) == {1} and cb.probe_origin == "val_dataloaders[1] of 2"
    assert torch.equal(cb.probe.first, _data(6, start=100.0).tensors[0][:3])


def test_one_loader_whose_sampler_selects_no_sample_is_no_validation_data(tmp_path, caplog):
    cb, model, _ = _fit(tmp_path, DataLoader(_data(8, start=100.0), sampler=[], batch_size=4), caplog)
    assert model.validated == [] and cb.probe_origin == "train_dataloader"
    assert torch.equal(cb.probe.first, _data(8).tensors[0][:3])
