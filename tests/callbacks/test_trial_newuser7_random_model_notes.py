"""A model that keeps dropout on in eval mode (MC dropout, newuser7 trial): the estimators warn that it draws random
numbers (common random numbers for effects; separate draws for the causal graph), but the callback showed that warning
once per fit, in the console; the text card and the JSON report of every audit said nothing, and a causal graph's
faithfulness of 0.08 read as the model's. Each audit's notes now say so: the effects' numbers are at fixed noise,
the graph compares separate draws. A deterministic model gets no such note."""

from __future__ import annotations

import warnings
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, CausalGraphAudit, InputEffectAudit
from lightning_causal.reporting.summary import markdown_summary


class Net(nn.Module):
    def __init__(self, mc_dropout: bool) -> None:
        super().__init__()
        self.fc1, self.fc2, self.mc = nn.Linear(4, 8), nn.Linear(8, 2), mc_dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.dropout(torch.relu(self.fc1(x)), 0.3, training=self.mc or self.training))


class Module(pl.LightningModule):
    def __init__(self, mc_dropout: bool) -> None:
        super().__init__()
        self.net = Net(mc_dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _notes(mc_dropout: bool, tmp_path: Path) -> tuple[dict, str]:
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] > 0).long()
    callback = CausalAuditCallback([InputEffectAudit(ace_values=None), CausalGraphAudit(["net.fc1"], stability_resamples=0)],
                                   probe=(x[:16], y[:16]))
    pl.seed_everything(0, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pl.Trainer(max_epochs=1, logger=False, callbacks=[callback], enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False, default_root_dir=tmp_path).fit(Module(mc_dropout), DataLoader(TensorDataset(x, y), batch_size=16))
    results = callback.last_results
    return {name: r.meta.get("notes", []) for name, r in results.items()}, markdown_summary(0, list(results.values()))


def test_the_notes_of_each_audit_say_that_the_model_draws_random_numbers(tmp_path: Path) -> None:
    notes, card = _notes(True, tmp_path)
    assert any("random numbers in eval mode; effects are at fixed noise" in n for n in notes["input_effect"]), notes
    assert any("causal_graph" in n and "separate noise draws" in n for n in notes["causal_graph"]), notes
    assert "- causal_graph: the model draws random numbers in eval mode" in card
    plain, _ = _notes(False, tmp_path)
    assert not any("random numbers" in n for ns in plain.values() for n in ns), plain
