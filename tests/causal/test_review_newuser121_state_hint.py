"""Review of newuser121's stale-state hint (pass_errors.stale_state_hint, applied by Forward to a failed pass).

It named any tensor the model keeps whose size the error names: a positional encoding ``pe [1, 64, 32]`` beside an
ordinary width bug in a pass of 2 rows (torch's "at non-singleton dimension 2" read as the pass's 2 rows), and a graph
held in the model (``adj [16, 16]``) at the callback's set-up as "tensors from earlier calls" with the streaming way out
only; and a hint after torch's message ending with a full stop gave "in the list.. The model"."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit
from lightning_causal.causal import input_effects


class WidthBug(nn.Module):
    """An ordinary bug: the input projection is 16 wide, the positional encoding (a buffer) 32."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("pe", torch.randn(1, 64, 32))
        self.inp, self.head = nn.Linear(4, 16), nn.Linear(32, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head((self.inp(x) + self.pe[:, : x.shape[1]]).mean(1))


class HeldGraph(nn.Module):
    """The nodes of one fixed graph as the rows; its adjacency a buffer, never written by a pass."""

    def __init__(self, n: int = 16) -> None:
        super().__init__()
        a = (torch.rand(n, n) < 0.3).float() + torch.eye(n)
        self.register_buffer("adj", a / a.sum(1, keepdim=True))
        self.lin, self.head = nn.Linear(4, 8), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.adj @ self.lin(x)))


class LeftContext(nn.Module):
    """A causal convolution streamed chunk by chunk, its left context kept from the last call whatever the rows."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.head = nn.Conv1d(3, 5, 3), nn.Linear(5, 2)
        self.ctx = torch.zeros(8, 3, 2)  # left by a pass of 8 rows

    def forward(self, chunk: torch.Tensor) -> torch.Tensor:  # [N, T, F]
        x = torch.cat([self.ctx, chunk.transpose(1, 2)], -1)
        self.ctx = x[..., -2:].detach()
        return self.head(torch.relu(self.conv(x)).mean(-1))


class Lit(pl.LightningModule):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        return nn.functional.cross_entropy(self(batch[0]), batch[1])

    def configure_optimizers(self):  # noqa: ANN201
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_an_index_the_error_names_is_no_size_of_a_kept_tensor():
    torch.manual_seed(0)
    with pytest.raises(RuntimeError, match="at non-singleton dimension 2") as err:
        input_effects(WidthBug().eval(), torch.randn(2, 8, 4))
    assert "keeps tensors" not in str(err.value) and "pe [1, 64, 32]" not in str(err.value)  # no state hint for a bug


def test_a_graph_held_in_the_model_is_told_the_graph_way_at_set_up(tmp_path):
    torch.manual_seed(0)
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    callback = CausalAuditCallback([InputEffectAudit()], probe_size=16, every_n_epochs=1)
    trainer = pl.Trainer(max_epochs=1, callbacks=[callback], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    with pytest.raises(MisconfigurationException, match=r"is misconfigured: mat1 and mat2") as err:
        trainer.fit(Lit(HeldGraph()), DataLoader(TensorDataset(x, y), batch_size=16))
    said = str(err.value)
    assert "net.adj [16, 16]" in said and "from earlier calls" not in said  # a graph is no state of earlier calls
    assert "make the graph the sample (docs/recipes.md, 'Graph neural networks')" in said


def test_a_hint_follows_a_message_ending_with_a_full_stop_once():
    torch.manual_seed(0)
    with pytest.raises(ValueError, match="failed where the batch of 8 ran") as err:
        input_effects(LeftContext().eval(), torch.randn(8, 4, 3), torch.arange(4).reshape(4, 1).expand(4, 3))
    said = str(err.value)
    assert "in the list. The model keeps tensors besides its parameters" in said and ".. " not in said
