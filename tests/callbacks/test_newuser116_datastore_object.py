"""A retrieval model whose datastore lives in an object of its own (``self.store.queue``, ``self.store.ptr``: no buffer,
no module), written by every forward pass, eval mode too (a user's oversight; the queue is read by the training loss as
MoCo's negatives, not by the output): the audits' passes wrote the probe's features into it and moved its pointer, and
training went on from there, silently (same seed: other weights with the callback than without). The callback now puts
such an object's tensors and numbers back, as a module's own (trial newuser116)."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback
from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks._no_trace import no_trace
from lightning_causal.causal import input_effects


class _Store:
    def __init__(self) -> None:
        self.queue, self.ptr = torch.zeros(32, 4), 0


class _QueueModel(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.enc, self.head, self.store = nn.Linear(3, 4), nn.Linear(4, 2), _Store()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.enc(x)
        with torch.no_grad():  # enqueued at every call, eval mode too
            rows = (self.store.ptr + torch.arange(len(x))) % 32
            self.store.queue[rows] = F.normalize(z.detach(), dim=1)
            self.store.ptr = (self.store.ptr + len(x)) % 32
        return self.head(z)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        x, y = batch
        negatives = self.store.queue.clone()
        z = F.normalize(self.enc(x), dim=1)
        return F.cross_entropy(self(x), y) + 0.1 * (z @ negatives.T).logsumexp(1).mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 3, generator=g)
    return x, (x[:, 0] + x[:, 1] > 0).long()


def test_no_trace_puts_back_a_datastore_object() -> None:
    torch.manual_seed(0)
    model = _QueueModel()
    model(torch.randn(5, 3))
    queue, ptr = model.store.queue.clone(), model.store.ptr
    with no_trace(model):
        input_effects(model, _data()[0][:16])
        model(torch.randn(7, 3))  # an audit of one's own running the model
    assert model.store.ptr == ptr == 5
    assert torch.equal(model.store.queue, queue)


def _fit(tmp_path, audited: bool) -> _QueueModel:
    pl.seed_everything(0)
    x, y = _data()
    model = _QueueModel()
    callbacks = [CausalAuditCallback([InputEffectAudit()], probe=(x[:8], y[:8]), probe_size=8)] if audited else []
    trainer = pl.Trainer(max_epochs=2, default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False, callbacks=callbacks)
    trainer.fit(model, DataLoader(TensorDataset(x, y), batch_size=16))
    return model


def test_same_weights_and_datastore_with_and_without_the_callback(tmp_path) -> None:
    plain, audited = _fit(tmp_path / "plain", False), _fit(tmp_path / "audited", True)
    assert audited.store.ptr == plain.store.ptr == (2 * 48) % 32
    assert torch.equal(audited.store.queue, plain.store.queue)
    assert all(torch.equal(p, q) for p, q in zip(plain.parameters(), audited.parameters()))
