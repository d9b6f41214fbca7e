"""A causal language model's standard batch, labels [N, T] shaped like input_ids with the ignore index
-100 at padding, was refused by the callback's probe check ('classes 0 to V-1 ... got [-100]'): -100 marks
positions without a target, not a class. One label per sample keeps the check."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

pl = pytest.importorskip("lightning.pytorch")
transformers = pytest.importorskip("transformers")

from lightning.pytorch.utilities.exceptions import MisconfigurationException  # noqa: E402

from lightning_causal import CausalAuditCallback, InputEffectAudit, load_report  # noqa: E402

V, T = 24, 8


def _batches(n: int, seed: int, per_position: bool = True) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, V, (n, T), generator=g)
    mask = torch.ones_like(ids)
    for i in range(n):  # left padding
        pad = int(torch.randint(0, 4, (1,), generator=g))
        ids[i, :pad], mask[i, :pad] = 0, 0
    labels = ids.masked_fill(mask == 0, -100) if per_position else torch.full((n,), -100)
    return [{"input_ids": ids[k:k + 16], "attention_mask": mask[k:k + 16], "labels": labels[k:k + 16]} for k in range(0, n, 16)]


class CausalLM(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
            vocab_size=V, n_positions=16, n_embd=32, n_layer=1, n_head=4, bos_token_id=1, eos_token_id=1, pad_token_id=0))

    def forward(self, input_ids, attention_mask=None):
        return self.model(input_ids=input_ids, attention_mask=attention_mask)

    def training_step(self, batch, batch_idx):
        logits = self(batch["input_ids"], batch["attention_mask"]).logits[:, :-1]
        return torch.nn.functional.cross_entropy(logits.reshape(-1, V), batch["input_ids"][:, 1:].reshape(-1))

    def validation_step(self, batch, batch_idx):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def _fit(tmp_path, per_position: bool):
    audit = CausalAuditCallback([InputEffectAudit(baseline=1, output=lambda out: out.logits[:, -1], ace_values=None)], probe_size=16)
    trainer = pl.Trainer(max_epochs=1, logger=pl.loggers.CSVLogger(tmp_path), callbacks=[audit], enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False)
    trainer.fit(CausalLM(), DataLoader(_batches(32, 0), batch_size=None), DataLoader(_batches(16, 1, per_position), batch_size=None))
    return trainer


def test_per_position_labels_with_the_ignore_index_are_audited(tmp_path):
    trainer = _fit(tmp_path, per_position=True)
    (path,) = (tmp_path / "lightning_logs" / "version_0" / "causal_audit").glob("*.json")
    scalars = load_report(path)["audits"]["input_effect"]["scalars"]
    assert scalars["mean_abs_effect"] > 0
    assert trainer.current_epoch == 1


def test_one_label_per_sample_outside_the_classes_is_still_refused(tmp_path):
    with pytest.raises(MisconfigurationException, match=r"classes 0 to 23 .* got \[-100\]"):
        _fit(tmp_path, per_position=False)
