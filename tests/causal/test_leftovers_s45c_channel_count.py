"""The channel-count lookup (``out_channels or num_features or num_channels``) was written three times (layer_activations'
``_inner_layout`` and ``_declared_layout``, head_sites' ``check_head_module``), and layer_activations read three private
names of unit_sites for it (re-read of session 44's change): ``unit_sites.channel_count`` and ``declared_widths`` serve
all three. Checked against the inline code they replace, module by module."""

import pytest
import torch
from torch import nn

from lightning_causal.causal.engine.head_sites import check_head_module
from lightning_causal.causal.engine.unit_sites import (
    _CONVOLVES,
    _features_last,
    _norm_width,
    channel_count,
    declared_widths,
)


class _Conv1D(nn.Module):  # Hugging Face's GPT-2 layer: its width is `nf`
    def __init__(self) -> None:
        super().__init__()
        self.nf = 12
        self.weight = nn.Parameter(torch.zeros(4, 12))


class _Block(nn.Module):  # a block of one's own that declares its channels
    def __init__(self) -> None:
        super().__init__()
        self.out_channels = 6
        self.conv = nn.Conv1d(3, 6, 3)


class _GroupLayerNorm(nn.GroupNorm):  # a channel normalisation named as a layer normalisation: both readings
    pass


_MODULES = [nn.Conv1d(3, 8, 3), nn.Conv2d(2, 5, 1), nn.BatchNorm1d(7), nn.InstanceNorm2d(4), nn.GroupNorm(2, 6),
            nn.Linear(3, 9), nn.Embedding(10, 11), nn.LayerNorm(13), nn.LayerNorm([2, 3]), nn.MultiheadAttention(8, 2),
            nn.GRU(4, 5), nn.ReLU(), nn.MaxPool1d(2), _Conv1D(), _Block(), _GroupLayerNorm(1, 4)]


def _old_channels(m, side="out_channels"):
    return getattr(m, side, None) or getattr(m, "num_features", None) or getattr(m, "num_channels", None)


def _old_width(m):
    return next((w for w in (getattr(m, "out_features", None), getattr(m, "embedding_dim", None), getattr(m, "nf", None))
                 if isinstance(w, int)), None) or _norm_width(m)


@pytest.mark.parametrize("module", _MODULES, ids=lambda m: type(m).__name__)
def test_one_lookup_answers_as_the_three_copies(module):
    assert channel_count(module) == _old_channels(module)
    assert channel_count(module, "in_channels") == _old_channels(module, "in_channels")
    declared = declared_widths(module)
    assert ("channels" in declared) == isinstance(module, _CONVOLVES)
    assert declared.get("channels") == (_old_channels(module) if isinstance(module, _CONVOLVES) else None)
    assert ("features" in declared) == _features_last(module)
    assert declared.get("features") == (_old_width(module) if _features_last(module) else None)


def test_a_norm_read_from_its_output_and_the_head_check():
    norm = nn.LayerNorm(4)
    assert "features" in declared_widths(norm, torch.randn(2, 6, 4))
    assert declared_widths(_GroupLayerNorm(1, 4)) == {"channels": 4, "features": 4}
    with pytest.raises(ValueError, match="num_heads"):  # 8 output channels in groups of 3: the count read as before
        check_head_module(nn.Conv2d(3, 8, 3), "conv", unit_dim=None, num_heads=3)
