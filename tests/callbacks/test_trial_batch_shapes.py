"""Batches and models of other shapes in real fits (trial "batch"): a two-input model
``forward(img, meta)`` returning a dict, dataclass batches, and what the set-up errors advise."""

from __future__ import annotations

import dataclasses
import re

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader, Dataset

from lightning_causal import CausalAuditCallback, UnitImportanceAudit
from tests.helpers.lightning import quick_trainer


class ImageAndMeta(nn.Module):
    """``forward(img [N, 1, 8, 8], meta [N, 3]) -> {"logits": [N, 3], "aux": [N, 1]}``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.meta = nn.Linear(3, 4)
        self.head = nn.Linear(4 * 16 + 4, 3)
        self.aux = nn.Linear(4, 1)

    def forward(self, img: torch.Tensor, meta: torch.Tensor) -> dict[str, torch.Tensor]:
        h = nn.functional.avg_pool2d(torch.relu(self.conv(img)), 2).flatten(1)
        m = torch.relu(self.meta(meta))
        return {"logits": self.head(torch.cat([h, m], 1)), "aux": self.aux(m)}


@dataclasses.dataclass
class Batch:
    img: torch.Tensor
    meta: torch.Tensor
    y: torch.Tensor
    note: str = ""


class Samples(Dataset):
    def __init__(self, n: int = 48) -> None:
        g = torch.Generator().manual_seed(0)
        self.img, self.meta, self.y = torch.randn(n, 1, 8, 8, generator=g), torch.randn(n, 3, generator=g), torch.randint(0, 3, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> Batch:
        return Batch(self.img[i], self.meta[i], self.y[i])


def collate(items: list[Batch]) -> Batch:
    return Batch(*(torch.stack([getattr(b, f) for b in items]) for f in ("img", "meta", "y")))


class DataclassModule(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.model = ImageAndMeta()

    def forward(self, img: torch.Tensor, meta: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model(img, meta)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return nn.functional.cross_entropy(self(batch.img, batch.meta)["logits"], batch.y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05)


def _loader() -> DataLoader:
    return DataLoader(Samples(), batch_size=16, collate_fn=collate)


def test_a_dataclass_batch_is_refused_with_a_fix_that_reads_its_fields_and_works(tmp_path):
    with pytest.raises(MisconfigurationException, match="dataclass Batch with tensor fields") as info:
        _fit(None, tmp_path)
    fix = re.search(r"`unpack_batch=(lambda batch: .*?)`", str(info.value)).group(1)
    assert fix == "lambda batch: ((batch.img, batch.meta), batch.y, None)"  # not batch[0]: a dataclass is not indexed
    cb = _fit(eval(fix), tmp_path)  # the advice, as printed, runs
    assert cb.audited_epochs == [0]
    assert set(cb.last_results["unit_importance"].vectors) == {"importance/model.conv", "importance/model.meta"}


def _fit(unpack_batch, root) -> CausalAuditCallback:
    cb = CausalAuditCallback([UnitImportanceAudit(["model.conv", "model.meta"])], probe_size=8, unpack_batch=unpack_batch,
                             report_dir=root, on_fit_end=False)
    quick_trainer(max_epochs=1, callbacks=[cb], default_root_dir=root).fit(DataclassModule(), _loader())
    return cb
