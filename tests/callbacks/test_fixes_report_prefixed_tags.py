"""``TensorBoardLogger(prefix="p")`` (carried fault): the audits' scalars carried the prefix (the logger puts it
there) but the histograms, figures and text card the renderer writes to the logger's ``SummaryWriter`` did not, so
two fits of other prefixes logging to one directory wrote their images over each other's tags. Every tag the audit
writes now starts with the prefix, the figures drawn at the end of a fit (``figures_every_n_audits``) too."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback
from lightning_causal.audits.base import Audit, AuditResult
from lightning_causal.models import LightningClassifier


class _Bars(Audit):
    """A scalar, and a unit importance: a histogram and a bar figure."""

    def run(self, model, probe, *, max_batch_size=None):  # noqa: ANN001, ANN201
        return AuditResult(self.name, scalars={"x": 1.0}, vectors={"importance/fc": torch.tensor([1.0, 0.5, 0.2])})


def _fit(root, prefix: str) -> str:
    torch.manual_seed(0)
    x, y = torch.randn(24, 4), torch.randint(0, 2, (24,))
    tb = TensorBoardLogger(root, name="tb", version=0, prefix=prefix, default_hp_metric=False)
    callback = CausalAuditCallback([_Bars("s")], probe_size=4, figures_every_n_audits=2)  # epoch 1's: drawn at fit end
    trainer = pl.Trainer(default_root_dir=str(root), logger=tb, callbacks=[callback], max_epochs=2, limit_train_batches=1,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, enable_checkpointing=False)
    trainer.fit(LightningClassifier(nn.Linear(4, 2), lr=0.1), DataLoader(TensorDataset(x[:16], y[:16]), batch_size=8),
                DataLoader(TensorDataset(x[16:], y[16:]), batch_size=8))
    return tb.log_dir


def _tags(log_dir: str) -> tuple[dict[str, list[str]], object]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(log_dir, size_guidance={"scalars": 0, "tensors": 0, "images": 0, "histograms": 0})
    acc.Reload()
    return {kind: [t for t in tags if t != "custom_scalars__config__"] for kind, tags in acc.Tags().items()
            if kind in ("scalars", "histograms", "images", "tensors")}, acc


def test_every_tag_of_two_prefixed_fits_in_one_directory_carries_its_prefix(tmp_path):
    log_dir = _fit(tmp_path, "p")
    assert _fit(tmp_path, "q") == log_dir
    tags, acc = _tags(log_dir)
    for prefix in ("p-", "q-"):
        assert f"{prefix}causal/s/bars/importance/fc" in tags["images"]
        assert f"{prefix}causal/s/histograms/importance/fc" in tags["histograms"]
        assert f"{prefix}causal/summary/text_summary" in tags["tensors"]
        assert f"{prefix}causal/s/x" in tags["scalars"]
    everything = [t for kind in tags.values() for t in kind]
    assert all(t.startswith(("p-", "q-")) for t in everything), everything
    for prefix in ("p-", "q-"):  # each fit's two audits' images, epoch 1's drawn at the fit's end at its own step
        assert len(acc.Images(f"{prefix}causal/s/bars/importance/fc")) == 2
