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
from torch.utils.data import DataLoader, Dataset, TensorDataset

from lightning_causal import (
    CaptumBaseline,
    CausalAuditCallback,
    InputEffectAudit,
    UnitImportanceAudit,
    load_report,
)
from lightning_causal.audits import Probe
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


# ------------------------------------------------------------------ which dataloader the probe comes from
class ImageModule(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 64, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return nn.functional.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        self.log("val_loss", nn.functional.cross_entropy(self(batch[0]), batch[1]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05)


def _images(seed: int, n: int = 32) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    return DataLoader(TensorDataset(torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 3, (n,), generator=g)), batch_size=16)


@pytest.mark.parametrize("several", [True, False])
def test_reports_name_the_validation_dataloader_the_probe_comes_from(tmp_path, several):
    train, first, second = _images(0), _images(1), _images(2)
    cb = CausalAuditCallback([UnitImportanceAudit(["model.0"])], probe_size=8, report_dir=tmp_path, on_fit_end=False)
    quick_trainer(max_epochs=1, callbacks=[cb]).fit(ImageModule(), train, [first, second] if several else first)
    assert torch.equal(cb.probe.first, first.dataset.tensors[0][:8])  # the first validation dataloader's samples
    source = "val_dataloaders[0] of 2" if several else "val_dataloaders"
    assert cb.probe_origin == source
    assert load_report(tmp_path / "epoch_0000.json")["probe"] == {"source": source, "samples": 8}


# ------------------------------------------------------------------ a float side input under "64-true"
class TwoInputModule(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.model = ImageAndMeta()

    def forward(self, img: torch.Tensor, meta: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model(img, meta)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        img, meta, y = batch
        return nn.functional.cross_entropy(self(img, meta)["logits"], y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05)


@pytest.mark.parametrize("precision", ["64-true", "bf16-true"])
def test_a_float_forward_argument_takes_the_weights_dtype_as_in_training(tmp_path, precision):
    data = Samples()
    loader = DataLoader(TensorDataset(data.img, data.meta, data.y), batch_size=16)
    audit = InputEffectAudit(patch_size=4, ace_values=None)
    cb = CausalAuditCallback([audit, UnitImportanceAudit(["model.meta"])], probe_size=8, report_dir=tmp_path, on_fit_end=False,
                             unpack_batch=lambda batch: (batch[0], batch[2], (batch[1],)))
    module = TwoInputModule()
    # Lightning converts the whole batch to the weights' dtype; the probe's forward argument (meta) stayed
    # float32 and the set-up refused the model: 'mat1 and mat2 must have the same dtype'
    quick_trainer(max_epochs=1, callbacks=[cb], precision=precision).fit(module, loader)
    dtype = next(module.parameters()).dtype
    assert cb.probe.additional_forward_args[0].dtype == dtype
    by_hand = audit.run(module, Probe(data.img[:8].to(dtype), data.y[:8], (data.meta[:8].to(dtype),)))
    assert torch.equal(cb.last_results["input_effect"].maps["effect"], by_hand.maps["effect"])


# ------------------------------------------------------------------ two CaptumBaseline audits in one run
def test_two_captum_baselines_log_their_comparisons_under_their_own_names(tmp_path):
    fine, coarse = (CaptumBaseline(("Saliency",), patch_size=p, name=n) for p, n in ((2, "captum_fine"), (4, "captum_coarse")))
    cb = CausalAuditCallback([fine, coarse], probe_size=8, report_dir=tmp_path, on_fit_end=False)
    trainer = quick_trainer(max_epochs=1, callbacks=[cb])
    trainer.fit(ImageModule(), _images(0), _images(1))
    report = load_report(tmp_path / "epoch_0000.json")["audits"]
    for name in ("captum_fine", "captum_coarse"):
        # both logged 'compare/Saliency/spearman': the second audit's value replaced the first's in
        # callback_metrics, the loggers and TensorBoard, while the report held both
        own = {k: v for k, v in report[name]["scalars"].items() if k.startswith("compare/")}
        assert own and all(k.startswith(f"compare/{name}:Saliency/") for k in own)
        for key, value in own.items():
            assert cb.last_scalars[key] == value and float(trainer.callback_metrics[key]) == pytest.approx(value)
    assert not any(k.startswith("compare/Saliency/") for k in cb.last_scalars)
    # the default name keeps the documented tags
    assert "compare/Saliency/spearman" in CaptumBaseline(("Saliency",), patch_size=4).run(ImageModule(), Probe(*_images(2).dataset.tensors)).scalars


def test_a_collated_dataclass_batch_is_a_probe(tmp_path):
    batch = collate([Samples()[i] for i in range(12)])
    cb = CausalAuditCallback([UnitImportanceAudit(["model.conv", "model.meta"])], probe=batch, probe_size=5, report_dir=tmp_path,
                             on_fit_end=False, unpack_batch=lambda b: ((b.img, b.meta), b.y, None))
    # refused: 'Expected argument `probe` to be a Probe, a tensor, a batch (a tuple, list or mapping ...) ... but got Batch'
    quick_trainer(max_epochs=1, callbacks=[cb]).fit(DataclassModule(), _loader())
    assert torch.equal(cb.probe.inputs[0], batch.img[:5]) and torch.equal(cb.probe.inputs[1], batch.meta[:5])
    assert torch.equal(cb.probe.labels, batch.y[:5]) and cb.audited_epochs == [0]
