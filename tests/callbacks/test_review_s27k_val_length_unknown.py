"""00314265 takes validation dataloaders whose datasets have length 0 for no validation data, asking ``len`` of each
dataset. A dataset read by index whose size is not known up front (``__len__`` raising ``NotImplementedError``, as
an abstract base's does; its DataLoader given a sampler), which Lightning fits and validates on (its ``has_len`` takes
that error for 'no length'), stopped the fit at the callback's set-up with that NotImplementedError. Its length
unknown, it is not empty: the callback explains it as validation data."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from lightning_causal import CausalAuditCallback
from lightning_causal.audits import InputEffectAudit
from tests.callbacks.test_review_s27e_empty_val_fallback import _data, _Module
from tests.helpers.lightning import trainer


class _SizeUnknown(Dataset):
    def __init__(self) -> None:
        self.data = _data(8)

    def __getitem__(self, i: int):  # noqa: ANN204
        return self.data[i]

    def __len__(self) -> int:
        raise NotImplementedError


def test_a_validation_set_of_unknown_length_is_explained(tmp_path):
    val = DataLoader(_SizeUnknown(), sampler=list(range(8)), batch_size=4)
    cb = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=5, report_dir=str(tmp_path / "reports"))
    # failed before: NotImplementedError from len(dataset) in the callback's set-up
    trainer(tmp_path, max_epochs=1, callbacks=[cb]).fit(_Module(), DataLoader(_data(12), batch_size=4), val)
    assert cb.probe_origin == "val_dataloaders"
    assert torch.equal(cb.probe.first, _data(8).tensors[0][:5])  # the validation samples, in the sampler's order
    assert cb.audited_epochs == [0]
