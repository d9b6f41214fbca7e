"""A CLIP-like zero-shot classifier runs its text tower on the class prompts, rows every sample shares: LayerMapAudit
leaves those layers out and warns, naming the pass's samples, so the callback showed the warning twice per fit (the
dry run's 2 samples, then the probe's). It is now shown once a fit."""

import warnings

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from lightning_causal import CausalAuditCallback
from lightning_causal.audits import LayerMapAudit


class ZeroShot(nn.Module):
    def __init__(self, image, text):
        super().__init__()
        self.image, self.text = image, text
        self.register_buffer("prompts", torch.cat([2 + torch.arange(10)[:, None], torch.zeros(10, 3, dtype=torch.long)], 1))

    def forward(self, pixels):
        return F.normalize(self.image(pixels), dim=-1) @ F.normalize(self.text(self.prompts), dim=-1).T


class Dual(pl.LightningModule):
    def __init__(self):
        super().__init__()
        image = nn.Sequential(nn.Flatten(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 16))
        text = nn.Sequential(nn.EmbeddingBag(24, 16, padding_idx=0), nn.Linear(16, 16))
        self.zero_shot = ZeroShot(image, text)

    @property
    def audited_module(self):
        return self.zero_shot

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self.zero_shot(batch[0]), batch[1])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), 0.01)


def test_the_prompt_rows_left_out_are_warned_of_once_a_fit(tmp_path):
    torch.manual_seed(0)
    data = DataLoader(list(zip(torch.randn(48, 1, 4, 4), torch.arange(48) % 10)), batch_size=16)
    trainer = pl.Trainer(max_epochs=2, callbacks=[CausalAuditCallback([LayerMapAudit()], probe_size=24)], logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(Dual(), data)
    said = [str(w.message) for w in caught if "do not hold the samples on dimension 0" in str(w.message)]
    assert len(said) == 1 and "'text.0' returned [10, 16]" in said[0], said
