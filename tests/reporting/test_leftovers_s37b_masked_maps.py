"""The map figures of irregular series and padded point clouds draw what was not measured apart: an observation
mask's 0 and padded steps hatched (no input point, no bar, no colour), the time axis labelled with the steps' time
stamps where the probe holds ``times``, padded points left out of the scatter; the callback's path reads both from the
probe's forward arguments (``probe_marks``)."""

import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit, Probe
from lightning_causal.callbacks.posthoc import audit_model
from lightning_causal.reporting.map_data import MapData, probe_marks
from lightning_causal.reporting.point_maps import point_maps
from lightning_causal.reporting.sequence_maps import HATCHED_NOTE, sequence_maps
from lightning_causal.reporting.tensorboard import TensorBoardRenderer
from tests.helpers.writers import RecordingWriter

T, C = 12, 3


def _series(channels: int = C) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    mask = (torch.rand(2, T, channels, generator=g) < 0.6)
    mask[:, 0] = True
    mask[0, 8:] = False  # sample 0 padded after 8 steps
    values = torch.randn(2, T, channels, generator=g) * mask
    times = torch.cumsum(0.05 + 0.6 * torch.rand(2, T, generator=g), 1)
    return values, mask, times


def _hatched_cells(ax) -> set[tuple[int, int]]:
    """The (row, step) cells the hatching covers on a heatmap's axes (cells 1 wide, centred on their indices)."""
    cells = set()
    for coll in ax.collections:
        if coll.get_hatch():
            for box in (b for path in coll.get_paths() for b in path.to_polygons()):  # one rectangle per run
                (x0, y0), (x1, y1) = box.min(0), box.max(0)
                cells |= {(r, k) for r in range(round(y0 + 0.5), round(y1 + 0.5)) for k in range(round(x0 + 0.5), round(x1 + 0.5))}
    return cells


def test_heatmap_hatches_the_unobserved_entries_and_labels_the_time_stamps():
    values, mask, times = _series()
    captum = torch.randn(2, T, C)  # a method's scores everywhere, unobserved entries too
    data = MapData(values, {"Saliency": captum}, "ie", unobserved=~mask, times=times, max_samples=1)
    [(tag, fig)] = sequence_maps(data, "last")
    inputs, heat = fig.axes[0], fig.axes[1]
    hidden = {(c, t) for t in range(T) for c in range(C) if not mask[0, t, c]}
    assert _hatched_cells(heat) == hidden  # every unobserved or padded cell, no other
    for c, line in enumerate(inputs.get_lines()):  # each channel's line: its observed steps only
        assert list(line.get_xdata()) == [t for t in range(T) if mask[0, t, c]]
    fig.canvas.draw()
    labels = {round(loc): tick.get_text() for loc, tick in zip(heat.get_xticks(), heat.get_xticklabels()) if tick.get_text()}
    assert labels and all(text == f"{times[0, k]:.3g}" for k, text in labels.items()), labels
    assert heat.get_xlabel().startswith("time")
    assert any(HATCHED_NOTE in t.get_text() for t in fig.texts)


def test_bars_of_one_channel_leave_the_unobserved_steps_out():
    values, mask, times = _series(1)
    scores = torch.ones(2, T, 1)  # a score at every step: the unobserved ones' are no measurement
    data = MapData(values, {"causal": scores}, "ie", unobserved=~mask, max_samples=1)
    [(_, fig)] = sequence_maps(data, "last")
    ax, twin = fig.axes[0], fig.axes[1]
    seen = mask[0, :, 0]
    heights = [p.get_height() for p in twin.patches]
    assert heights == [1.0 if s else 0.0 for s in seen.tolist()]
    assert list(ax.get_lines()[0].get_xdata()) == seen.nonzero().flatten().tolist()
    spans = [b for coll in ax.collections if coll.get_hatch() for p in coll.get_paths() for b in p.to_polygons()]
    covered = {k for b in spans for k in range(round(b[:, 0].min() + 0.5), round(b[:, 0].max() + 0.5))}
    assert covered == set((~seen).nonzero().flatten().tolist())
    assert ax.get_xlabel() == "time step"  # no time stamps given: the steps' indices, said so


def test_without_marks_the_figures_are_as_before():
    values, mask, times = _series()
    [(_, fig)] = sequence_maps(MapData(values, {"causal": torch.randn(2, T, C)}, "ie", max_samples=1), "last")
    assert not any(coll.get_hatch() for ax in fig.axes for coll in ax.collections)
    assert fig.axes[1].get_xlabel() == "time step"
    assert not any(HATCHED_NOTE in t.get_text() for t in fig.texts)


def test_padded_points_are_left_out_of_the_scatter():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 40, 3, generator=g)
    real = torch.arange(40)[None] < torch.tensor([[25], [40]])
    x = x * real[..., None]  # padded points at the origin
    data = MapData(x, {"causal": torch.randn(2, 40, 3, generator=g)}, "ie", unobserved=~real[..., None], max_samples=2)
    figs = point_maps(data)
    drawn = [max(len(c.get_offsets()) for c in fig.axes[0].collections) for _, fig in figs]
    assert drawn == [25, 40]
    assert any("15 of 40 points are padding" in t.get_text() for t in figs[0][1].texts)
    assert not any("padding" in t.get_text() for t in figs[1][1].texts)


class _Irregular(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(T * C + T, 2)

    def forward(self, values, attention_mask, times):
        return self.head(torch.cat([(values * attention_mask).flatten(1), times], 1))


def test_probe_marks_reads_positional_arguments_by_forward_names():
    values, mask, times = _series()
    unobserved, stamps = probe_marks(_Irregular(), values, (mask.float(), times))
    assert torch.equal(unobserved, ~mask) and torch.equal(stamps, times)
    assert probe_marks(_Irregular(), values, None) == (None, None)


def test_the_callbacks_path_draws_with_the_probes_marks(monkeypatch):
    values, mask, times = _series()
    seen = {}

    def spy(self, writer, epoch, results, inputs, **kwargs):
        seen.update(kwargs)

    monkeypatch.setattr(TensorBoardRenderer, "render", spy)
    batch = ((values, mask.float(), times), torch.zeros(2, dtype=torch.long))  # explain="values": the others as arguments
    audit_model(_Irregular(), InputEffectAudit(ace_values=None), batch, 2, writer=RecordingWriter(), explain="values",
                figure_kind="sequence_features_last")
    assert torch.equal(seen["probe_unobserved"], ~mask) and torch.equal(seen["probe_times"], times)
    assert InputEffectAudit(ace_values=None).run(_Irregular().eval(), Probe(values, None, (mask.float(), times))).maps
