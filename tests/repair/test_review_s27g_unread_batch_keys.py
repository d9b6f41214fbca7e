"""newuser46's audio batches (137fbad2) in CausalRepairModule: a Wav2Vec2 feature extractor's padded batch
``{"input_values", "attention_mask", "labels"}`` was refused by the default ``unpack_batch`` before 137fbad2; after it the
repair module trained ``model(batch["input_values"])``, the mask left out, without a word (the audit callback warns of
such keys at set-up, docs/your_model.md, Batches)."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from lightning_causal import CausalRepairModule


class _MaskedMean(nn.Module):
    """``[N, T]`` waveforms -> 2 logits of the mean over the real samples (``attention_mask`` 1), as a padded batch needs."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(1, 2)

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        mask = torch.ones_like(input_values) if attention_mask is None else attention_mask.to(input_values)
        return self.head(((input_values * mask).sum(1) / mask.sum(1))[:, None])


def _batches() -> list[dict[str, torch.Tensor]]:
    mask = torch.ones(4, 6, dtype=torch.long)
    mask[2:, 4:] = 0  # two waveforms padded after sample 4
    x = torch.arange(24.0).reshape(4, 6) * mask
    return [{"input_values": x, "attention_mask": mask, "labels": torch.tensor([0, 1, 0, 1])}]


def _fit(module: CausalRepairModule) -> None:
    pl.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False).fit(module, DataLoader(_batches(), batch_size=None))


def test_the_repair_module_names_batch_tensors_its_default_unpack_batch_passes_to_no_model_call():
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match=r"CausalRepairModule's batches hold \['attention_mask'\] besides the inputs "
                                         r"'input_values' and the labels 'labels'.*unpack_batch=lambda batch: "
                                         r"\(batch\['input_values'\], batch\['labels'\], \{'attention_mask': batch\['attention_mask'\]\}\)"):
        _fit(CausalRepairModule(_MaskedMean(), []))


def test_the_printed_unpack_batch_passes_the_mask_and_no_warning_is_given():
    torch.manual_seed(0)
    module = CausalRepairModule(_MaskedMean(), [], unpack_batch=lambda batch: (
        batch["input_values"], batch["labels"], {"attention_mask": batch["attention_mask"]}))
    batch = _batches()[0]
    x, y, args = module.unpack(batch)
    mean = torch.tensor([2.5, 8.5, 13.5, 19.5])  # the real samples' means: (12+13+14+15)/4 = 13.5, (18+...+21)/4 = 19.5
    expected = nn.functional.cross_entropy(module.model.head(mean[:, None]), y)
    assert torch.allclose(nn.functional.cross_entropy(module.model_outputs(x, args), y), expected)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", message=r".*(num_workers|does not have many workers|GPU available|TPU available"
                                                  r"|HPU available|log_every_n_steps|Total length).*")
        _fit(module)
