"""Review of newuser98's trial: InputEffectAudit on EEG ``[N, C, T]`` grouped by channel with ``feature_names=`` (the
electrodes) drew its channels x time heatmaps with the rows numbered 0..15, the names nowhere on the figure. Where one
mask makes each channel (or each feature of ``[N, T, F]``) a group of its own, the rows carry the names."""

import pytest
import torch
from torch import nn

from lightning_causal import InputEffectAudit, Probe
from lightning_causal.reporting.tensorboard import TensorBoardRenderer

NAMES = ["Fp1", "Fp2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2", "F7", "F8", "T7", "T8", "P7", "P8"]


def _figure(shape, mask, names):
    torch.manual_seed(0)
    x = torch.randn(*shape)
    net = nn.Sequential(nn.Flatten(), nn.Linear(x[0].numel(), 3)).eval()
    result = InputEffectAudit(feature_mask=mask, feature_names=names, ace_values=None).run(net, Probe(x))
    (fig,) = TensorBoardRenderer(max_samples=1).figures([result], x).values()
    fig.canvas.draw()
    return result, fig


def _tick_names(ax):
    return [(int(round(t)), label.get_text()) for t, label in zip(ax.get_yticks(), ax.get_yticklabels())]


@pytest.mark.parametrize("mask", [torch.arange(16)[:, None].expand(16, 64), torch.arange(16).reshape(1, 16, 1)])
def test_channel_groups_label_the_heatmap_rows_by_name(mask):
    # the second, a mask that broadcasts over time, named no channels before mends_s40d
    result, fig = _figure((6, 16, 64), mask, NAMES)
    assert result.meta["channel_names"] == NAMES
    heatmaps = [ax for ax in fig.axes if ax.get_ylabel() in ("channel", "input\nchannel")]
    assert len(heatmaps) == 2
    for ax in heatmaps:
        ticks = _tick_names(ax)
        assert len(ticks) >= 3 and all(text == NAMES[row] for row, text in ticks)


def test_permuted_channel_groups_and_features_last_named_by_their_group():
    order = torch.tensor([2, 0, 1])  # channel 0 is group 2
    result, fig = _figure((6, 3, 64), order[:, None].expand(3, 64), ["C3", "Cz", "C4"])
    assert result.meta["channel_names"] == ["C4", "C3", "Cz"]
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["C4", "C3", "Cz"]
    result, fig = _figure((6, 64, 5), torch.arange(5)[None, :].expand(64, 5), list("abcde"))
    assert result.meta["last_names"] == list("abcde") and "channel_names" not in result.meta
    feature_rows = [ax for ax in fig.axes if ax.get_ylabel() == "feature"]
    assert feature_rows and all(text == "abcde"[row] for row, text in _tick_names(feature_rows[0]))


def test_groups_that_are_no_whole_channels_keep_the_indices():
    mask = (torch.arange(16)[:, None] // 2 * 4 + torch.arange(64)[None, :] // 16)  # pairs of channels x 4 windows
    result, fig = _figure((6, 16, 64), mask, [f"g{i}" for i in range(32)])
    assert "channel_names" not in result.meta and "last_names" not in result.meta
    ax = [a for a in fig.axes if a.get_ylabel() == "channel"][0]
    assert all(text == str(row) for row, text in _tick_names(ax))
