"""Recurrent and 1-D sequence models in the audits (trial "seq"): a GRU whose forward returns
``(logits, hidden_state)``, explained with ``output=0``."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, CausalGraphAudit
from lightning_causal.audits import Probe
from lightning_causal.causal import causal_graph
from tests.helpers.lightning import quick_trainer


class GRUWithState(pl.LightningModule):
    """A GRU classifier on ``[N, T, C]`` signals whose forward returns ``(logits, h_n)``."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(3, 6, batch_first=True)
        self.hidden = nn.Linear(6, 6)
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        out, h = self.gru(x)
        return self.head(torch.relu(self.hidden(out[:, -1]))), h

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x)[0], y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _signals(n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 10, 3, generator=g), torch.randint(0, 2, (n,), generator=g)


def test_causal_graph_audit_takes_output_for_a_model_returning_logits_and_state(tmp_path):
    """CausalGraphAudit(output=0) did not hand `output` to Audit, so the callback's set-up read the
    model's (logits, h_n) with output=None and refused the audit, telling the user to pass the
    `output=` they had passed."""
    torch.manual_seed(0)
    x, y = _signals()
    module = GRUWithState()
    audit = CausalGraphAudit(["gru", "hidden"], unit_dim=-1, output=0, stability_resamples=0)
    callback = CausalAuditCallback([audit], probe_size=8, report_dir=tmp_path)
    quick_trainer(max_epochs=1, limit_train_batches=1, callbacks=[callback]).fit(
        module, DataLoader(TensorDataset(x, y), batch_size=16), DataLoader(TensorDataset(x, y), batch_size=16)
    )
    graph = causal_graph(module, x[:8], ["gru", "hidden"], unit_dim=-1, output=0)
    result = callback.last_results["causal_graph"]
    assert result.scalars["n_edges"] == len(graph.edges)
    assert result.scalars["faithfulness"] == graph.meta["faithfulness"]
    direct = audit.run(module, Probe(x[:8]))
    assert direct.scalars["n_edges"] == len(graph.edges)
