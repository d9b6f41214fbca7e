"""The units of ``unit_dim`` off dimension 1 were named by a pass of their own (``audits/unit_names.py``: one more pass
of the probe's first sample, hooks on every module) whose idea of a channels-first layer was not the engine's
(``unit_sites``, which checks every layer before intervening): the namer counted pooling layers, the engine did not;
the engine counted blocks, the namer did not. A convolution block ending in a pool (``Conv1d, ReLU, MaxPool1d`` in one
``nn.Sequential``, the commonest CNN block) ranked with ``unit_dim=-1`` ranks its time steps, but both audits called
them "neurons", without the note; and ``num_heads`` without ``unit_dim`` on a pool's ``[N, C, H, W]`` cut its width
into columns without a word, where a convolution's is refused. One detection now serves both: the engine's
``SiteFacts`` carries the module whose channels the layer holds and whether it is complex, and the audits name the units
from the facts of the pass the engine already ran."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.audits import CausalGraphAudit, Probe, UnitImportanceAudit
from lightning_causal.causal.effects.unit_effects import unit_effects


def _net() -> nn.Module:
    torch.manual_seed(0)
    features = nn.Sequential(nn.Conv1d(2, 3, 3, padding=1), nn.ReLU(), nn.MaxPool1d(2))
    return nn.Sequential(features, nn.Flatten(), nn.Linear(12, 6), nn.ReLU(), nn.Linear(6, 2)).eval()


def _x() -> torch.Tensor:
    return torch.randn(16, 2, 8, generator=torch.Generator().manual_seed(1))


def test_a_convolution_block_ending_in_a_pool_ranks_positions_and_says_so() -> None:
    r = UnitImportanceAudit(["0"], unit_dim=-1, target=0).run(_net(), Probe(_x()))
    assert r.meta["unit_kind/0"] == "position"
    assert any(n.startswith("0 is a block laid out as nn.MaxPool1d '0.2' inside it") and "ranks its positions" in n
               for n in r.meta["notes"])


def test_the_graph_of_such_a_block_calls_its_units_positions() -> None:
    r = CausalGraphAudit(["0", "3"], unit_dim={"0": -1}, target=0, stability_resamples=0).run(_net(), Probe(_x()))
    assert r.graphs["causal_graph"]["meta"]["unit_kinds"] == {"0": "position"}


def test_num_heads_without_unit_dim_on_a_pool_is_refused_as_on_a_convolution() -> None:
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 2)).eval()
    with pytest.raises(ValueError, match=r"'1' returns \[1, 4, 4, 4\] with its channels on dimension 1"):
        unit_effects(model, torch.randn(3, 1, 10, 10), "1", num_heads=2)


def test_the_channels_of_an_input_site_are_named_as_its_input() -> None:
    model = nn.Sequential(nn.Conv1d(2, 3, 1), nn.Flatten(), nn.Linear(24, 2)).eval()
    r = UnitImportanceAudit(["0:input"], unit_dim=-1, target=0).run(model, Probe(_x()))
    assert r.meta["unit_kind/0:input"] == "position"
    assert any(n.startswith("0:input is the input of nn.Conv1d '0'") for n in r.meta["notes"])


class _PooledSequence(nn.Module):
    """A sequence block [N, T, D] -> [N, T / 2, D] that pools its steps in between (a funnel transformer's)."""

    def __init__(self) -> None:
        super().__init__()
        self.inner, self.pool, self.outer = nn.Linear(4, 4), nn.AvgPool1d(2), nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outer(self.pool(self.inner(x).transpose(1, 2)).transpose(1, 2))


def test_a_pool_inside_a_sequence_block_leaves_its_features_last() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(_PooledSequence(), nn.Flatten(), nn.Linear(12, 2)).eval()
    with pytest.raises(ValueError, match="has its features last"):
        unit_effects(model, torch.randn(3, 6, 4), "0")
