"""A causal language model in a Lightning fit with the audits of docs/text.md ('A causal language model
in a Lightning fit'): dict batches, a left-padded probe, the next token at the last position; the token
effects of the report equal replacing each real token by hand."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

pl = pytest.importorskip("lightning.pytorch")
transformers = pytest.importorskip("transformers")

from lightning_causal import load_report  # noqa: E402

V, T = 24, 8


def _batches(n: int, seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    ids, mask = torch.zeros(n, T, dtype=torch.long), torch.zeros(n, T, dtype=torch.long)
    for i in range(n):  # left padding
        length = int(torch.randint(4, T + 1, (1,), generator=g))
        ids[i, T - length:], mask[i, T - length:] = torch.randint(2, V, (length,), generator=g), 1
    labels = ids[:, -3]  # a token to copy
    return [{"input_ids": ids[k:k + 16], "attention_mask": mask[k:k + 16], "labels": labels[k:k + 16]} for k in range(0, n, 16)]


class LanguageModel(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
            vocab_size=V, n_positions=16, n_embd=32, n_layer=2, n_head=4, bos_token_id=1, eos_token_id=1, pad_token_id=0))

    def forward(self, input_ids, attention_mask):
        position_ids = (attention_mask.cumsum(1) - 1).clamp(min=0)  # left padding: each prompt's own positions
        return self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)

    def training_step(self, batch, batch_idx):
        logits = self(batch["input_ids"], batch["attention_mask"]).logits[:, -1]
        return torch.nn.functional.cross_entropy(logits, batch["labels"])

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", torch.nn.functional.cross_entropy(self(batch["input_ids"], batch["attention_mask"]).logits[:, -1], batch["labels"]))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=3e-3)


def test_the_text_page_lm_audits_run_in_a_fit_and_match_token_replacement(tmp_path):
    from lightning.pytorch.loggers import TensorBoardLogger

    page = (Path(__file__).resolve().parents[2] / "docs" / "text.md").read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", page, re.S) if "lm_audit = CausalAuditCallback" in b]
    vocabulary = ["<pad>", "<bos>"] + [f"t{i}" for i in range(2, V)]
    ns = {"vocabulary": vocabulary}
    exec(compile(block, "<text.md LM audits>", "exec"), ns)  # noqa: S102 - the docs' own example
    module = LanguageModel()
    val = _batches(32, 1)
    trainer = pl.Trainer(max_epochs=1, logger=TensorBoardLogger(tmp_path), callbacks=[ns["lm_audit"]], enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False)
    trainer.fit(module, DataLoader(_batches(64, 0), batch_size=None), DataLoader(val, batch_size=None))
    (path,) = sorted(Path(trainer.logger.log_dir, "causal_audit").glob("*.json"))
    report = load_report(path)["audits"]
    assert set(report) == {"input_effect", "unit_importance", "layer_map", "causal_graph"}
    ids = torch.cat([b["input_ids"] for b in val])
    mask = torch.cat([b["attention_mask"] for b in val])
    module.eval()
    with torch.no_grad():
        logits = module(ids, mask).logits[:, -1]
        target = logits.argmax(1, keepdim=True)
        effects = torch.zeros(ids.shape)
        for t in range(T):
            replaced = torch.where((torch.arange(T) == t) & (mask == 1), torch.zeros_like(ids), ids)
            effects[:, t] = (logits.gather(1, target) - module(replaced, mask).logits[:, -1].gather(1, target))[:, 0]
    real = mask.bool()
    assert report["input_effect"]["scalars"]["mean_abs_effect"] == pytest.approx(float(effects.abs()[real].mean()), rel=1e-4)
    per_position = (effects.abs() * real).sum(0) / real.sum(0).clamp(min=1)
    torch.testing.assert_close(torch.tensor(report["input_effect"]["vectors"]["mean_abs_effect"]), per_position, rtol=1e-4, atol=1e-6)
    assert report["input_effect"]["meta"]["targets"] == target[:, 0].tolist()
