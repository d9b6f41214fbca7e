"""Review of eb30fb1f (pools count as channels-first): a block counted as channels-first where any pool inside it
returned a tensor of the block's output shape. A sequence block [N, T, D] whose token mixer pools its steps through a
transpose (a PoolFormer's AvgPool1d over [N, D, T]) matches that shape by chance where T == D (16 tokens of 16
features): its features (unit_dim=-1) were named "positions", with a note saying it holds channels in dimension 1, and
num_heads without unit_dim was refused as on a convolution, where with 12 tokens it was neither. A pool inside a block
whose own features-last layers give its output shape (the LayerNorm, the MLP's Linear) says nothing of its layout, as
1d28cfbb has it for features last."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.audits import Probe, UnitImportanceAudit
from lightning_causal.causal.effects.unit_effects import unit_effects
from lightning_causal.causal.engine.unit_sites import inspect_site


class _PoolMixer(nn.Module):
    """A PoolFormer block on token features [N, T, D]: x + pool(norm(x)) - norm(x), then an MLP, residual."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.pool = nn.AvgPool1d(3, 1, 1, count_include_pad=False)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(x)
        x = x + self.pool(y.transpose(1, 2)).transpose(1, 2) - y
        return x + self.mlp(x)


class _Classifier(nn.Module):
    def __init__(self, d: int = 16) -> None:
        super().__init__()
        self.emb, self.block, self.head = nn.Embedding(50, d), _PoolMixer(d), nn.Linear(d, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(self.emb(ids)).mean(1))


def _ids(steps: int) -> torch.Tensor:
    return torch.randint(0, 50, (6, steps), generator=torch.Generator().manual_seed(0))


def test_a_pool_over_steps_inside_a_sequence_block_leaves_it_features_last_whatever_its_length() -> None:
    torch.manual_seed(0)
    model = _Classifier().eval()
    for steps in (12, 16):  # 16 steps of 16 features: the pool's [N, D, T] has the block's shape
        ids = _ids(steps)
        facts = inspect_site(model, "block", lambda ids=ids: model(ids[:1]))
        assert facts.features_last and not facts.channels_first and facts.channels_source is None
        r = UnitImportanceAudit(["block"], unit_dim=-1, target=0).run(model, Probe(ids))
        assert r.meta["unit_kind/block"] == "neuron"
        assert not any("channels in dimension 1" in n for n in r.meta.get("notes", []))
        _, info = unit_effects(model, ids, "block", num_heads=4, target=0, return_info=True)  # heads, not refused
        assert info.layout.dim == 2 and info.units.numel() == 4


def test_a_convolution_block_ending_in_a_pool_stays_channels_first() -> None:
    model = nn.Sequential(nn.Sequential(nn.Conv1d(16, 16, 3, padding=1), nn.ReLU(), nn.MaxPool1d(1)), nn.Flatten(),
                          nn.Linear(256, 2)).eval()
    x = torch.randn(1, 16, 16)
    facts = inspect_site(model, "0", lambda: model(x))
    assert facts.channels_first and facts.channels_source == "0.2"


class _Residual(nn.Module):
    """A ResNet basic block whose shortcut (Conv1d, BatchNorm1d) runs after its main path, as torchvision's does."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv1d(2, 4, 3, padding=1), nn.BatchNorm1d(4)
        self.short = nn.Sequential(nn.Conv1d(2, 4, 1), nn.BatchNorm1d(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn(self.conv(x))
        return torch.relu(out + self.short(x))


def test_a_residual_blocks_note_says_it_is_a_block_not_the_output_of_its_shortcut() -> None:
    """eb30fb1f named a block's units "positions" from the last channels-first layer inside it, and the note said the
    block 'carries the output of nn.BatchNorm1d 'b.short.1'', its shortcut's norm, of which it carries a sum."""
    torch.manual_seed(0)
    model = nn.Sequential(_Residual(), nn.Flatten(), nn.Linear(32, 2)).eval()
    r = UnitImportanceAudit(["0"], unit_dim=-1, target=0).run(model, Probe(torch.randn(6, 2, 8)))
    assert r.meta["unit_kind/0"] == "position"
    note = next(n for n in r.meta["notes"] if "channels in dimension 1" in n)
    assert note.startswith("0 is a block laid out as nn.BatchNorm1d '0.short.1' inside it, [N, C, ...] with its channels")
    assert "carries the output" not in note and "ranks its positions" in note
