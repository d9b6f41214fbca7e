"""The hatching of a sequence figure's unobserved entries is one compound path per panel: a collection of a rectangle
per run drew each run's hatching on its own, 6.7 s a figure for 16 channels of 2000 steps half unobserved, at every
audit of the callback (review of 6ab93ab5)."""

import torch

from lightning_causal.reporting.map_data import MapData
from lightning_causal.reporting.sequence_maps import sequence_maps


def _hatchings(fig) -> list:
    return [coll for ax in fig.axes for coll in ax.collections if coll.get_hatch()]


def test_the_unobserved_entries_are_hatched_as_one_path_per_panel_covering_each_run():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 300, 8, generator=g)
    hidden = torch.rand(1, 300, 8, generator=g) < 0.5  # about 600 runs
    [(_, fig)] = sequence_maps(MapData(x, {"causal": torch.randn(1, 300, 8, generator=g)}, "ie", unobserved=hidden), "last")
    hatchings = _hatchings(fig)
    assert len(hatchings) == 2 and all(len(c.get_paths()) == 1 for c in hatchings)  # the input's heatmap and the map's
    edges = torch.nn.functional.pad(hidden[0].T.int(), (1, 1)).diff(dim=1)
    runs = int((edges == 1).sum())
    for coll in hatchings:
        boxes = coll.get_paths()[0].to_polygons()
        assert len(boxes) == runs
        covered = sum(float(b[:, 0].max() - b[:, 0].min()) for b in boxes)
        assert covered == float(hidden.sum())  # one cell per unobserved entry, none more


def test_one_channel_hatches_its_hidden_steps_as_one_path_per_panel():
    x = torch.randn(1, 50, 1)
    hidden = (torch.arange(50) % 3 == 0)[None, :, None]
    [(_, fig)] = sequence_maps(MapData(x, {"causal": torch.randn(1, 50, 1), "Saliency": torch.rand(1, 50, 1)}, "ie",
                                       unobserved=hidden), "last")[:1]
    hatchings = _hatchings(fig)
    assert hatchings and all(len(c.get_paths()) == 1 for c in hatchings)
    assert len(hatchings[0].get_paths()[0].to_polygons()) == 17


def test_the_colour_scale_takes_its_sign_from_the_observed_entries_only():
    x = torch.randn(1, 20, 6)
    hidden = torch.zeros(1, 20, 6, dtype=torch.bool)
    hidden[:, 15:] = True  # padded steps
    scores = torch.rand(1, 20, 6) + 0.1
    scores[:, 15:] = -5.0  # a method's scores where nothing was measured
    [(_, fig)] = sequence_maps(MapData(x, {"IntegratedGradients": scores}, "ie", unobserved=hidden), "last")
    image = fig.axes[1].get_images()[0]
    assert image.get_cmap().name.startswith("Reds") and image.get_clim() == (0.0, float(scores[:, :15].max())), image.get_clim()
