"""An audio user's spectrogram ``[N, 1, F, T]`` (row 0 = the lowest frequency, as librosa and torchaudio give it)
was drawn with row 0 at the top: its low frequencies at the top, upside down against ``librosa.display.specshow``.
``image_origin="lower"`` (TensorBoardRenderer, CausalAuditCallback, audit_model) draws row 0 at the bottom, alike in
the input panel, every map panel and the counterfactuals; the default ``"upper"`` draws as before."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from matplotlib.backends.backend_agg import FigureCanvasAgg
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.audits import AuditResult, CounterfactualAudit, InputEffectAudit, Probe
from lightning_causal.callbacks import CausalAuditCallback, audit_model
from lightning_causal.reporting import TensorBoardRenderer

BINS, FRAMES, BAND = 16, 8, (2, 4)  # a planted low band: frequency bins 2 and 3 of 16


def _spectrograms(n: int = 2) -> torch.Tensor:
    x = torch.zeros(n, 1, BINS, FRAMES)
    x[:, :, BAND[0]:BAND[1]] = 1.0
    return x


def _band_rows(fig, ax, bright: bool) -> np.ndarray:
    """The rows of ``ax``'s drawn pixels (0 = the top of the panel, as fractions of its height) where the band is:
    bright rows (a grey input) or dark ones (a map on ``Reds``, white at 0)."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    pixels = np.asarray(canvas.buffer_rgba())[..., :3].astype(float).mean(-1)
    box = ax.get_window_extent(canvas.get_renderer())
    top, bottom = int(round(pixels.shape[0] - box.y1)) + 2, int(round(pixels.shape[0] - box.y0)) - 2  # inside the spines
    left, right = int(round(box.x0)) + 2, int(round(box.x1)) - 2
    rows = pixels[top:bottom, left:right].mean(1)
    band = np.flatnonzero(rows > 128 if bright else rows < 128)
    return band / (bottom - top)


def _result() -> AuditResult:
    m = torch.zeros(2, 1, BINS, FRAMES)
    m[:, :, BAND[0]:BAND[1]] = 1.0  # the effect where the band is
    return AuditResult("input_effect", maps={"causal": m})


@pytest.mark.parametrize("origin", ["upper", "lower"])
def test_the_band_is_drawn_at_the_top_by_default_and_at_the_bottom_with_lower(origin):
    kwargs = {} if origin == "upper" else {"image_origin": origin}
    fig = TensorBoardRenderer(max_samples=1, **kwargs).figures([_result()], _spectrograms())["causal/input_effect/maps/sample_0"]
    inp, effect = fig.axes[0], fig.axes[1]
    assert [inp.get_title(), effect.get_title()] == ["input", "causal"]
    # bins 2-3 of 16: the fractions 2/16 to 4/16 of the panel from its top, or from its bottom
    expected = (2 / 16, 4 / 16) if origin == "upper" else (12 / 16, 14 / 16)
    for ax, bright in ((inp, True), (effect, False)):
        rows = _band_rows(fig, ax, bright)
        assert rows.min() == pytest.approx(expected[0], abs=0.03) and rows.max() == pytest.approx(expected[1], abs=0.03), ax.get_title()
        image = ax.get_images()[0]
        assert image.origin == origin
        # the array drawn is the data's, whatever the drawing: row 0 is bin 0 (titles and cards keep the data's indices)
        expected_array = np.zeros((BINS, FRAMES))
        expected_array[BAND[0]:BAND[1]] = 1.0
        np.testing.assert_array_equal(np.asarray(image.get_array()), expected_array)


def test_the_default_draws_the_very_pixels_of_upper():
    figs = [TensorBoardRenderer(max_samples=1, **kw).figures([_result()], _spectrograms())["causal/input_effect/maps/sample_0"]
            for kw in ({}, {"image_origin": "upper"}, {"image_origin": "lower"})]
    drawn = []
    for fig in figs:
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        drawn.append(np.asarray(canvas.buffer_rgba()).copy())
    np.testing.assert_array_equal(drawn[0], drawn[1])
    assert not np.array_equal(drawn[0], drawn[2])


class _Band(torch.nn.Module):
    """Class 1 where the low band is loud (a 2-class model of the spectrogram)."""

    def forward(self, x):  # noqa: ANN001, ANN201
        s = x[:, 0, BAND[0]:BAND[1]].mean((1, 2)) - 0.5
        return torch.stack([-s, s], 1) * 10


def test_the_counterfactuals_are_drawn_as_the_maps():
    x = _spectrograms()
    r = CounterfactualAudit(towards="runner_up").run(_Band(), _probe(x))
    figs = TensorBoardRenderer(max_samples=1, image_origin="lower").figures([r], x)
    fig = figs["causal/counterfactual/images/counterfactuals"]
    panels = [ax for ax in fig.axes if ax.get_images()]
    assert len(panels) == 3 and all(ax.get_images()[0].origin == "lower" for ax in panels)  # input, counterfactual, difference
    rows = _band_rows(fig, panels[0], bright=True)
    assert rows.min() == pytest.approx(12 / 16, abs=0.03) and rows.max() == pytest.approx(14 / 16, abs=0.03)


def test_grids_of_input_space_images_are_drawn_as_the_maps():
    """Images an audit keeps in the input's space (a backdoor audit's reversed triggers) are turned alike."""
    r = AuditResult("toy", images={"trigger": _spectrograms(3)})
    figs = TensorBoardRenderer(image_origin="lower").figures([r], _spectrograms())
    origins = [im.origin for ax in figs["causal/toy/images/trigger"].axes for im in ax.get_images()]
    assert origins == ["lower"] * 3


@pytest.mark.filterwarnings("ignore:figure kind 'sequence' draws inputs")  # the note on [N, C, T] against [N, T, F]
def test_a_sequence_kind_keeps_its_channel_order():
    """``image_origin`` is of images: the rows of a sequence's channels are not turned over."""
    x = torch.zeros(2, 3, 8)
    r = AuditResult("input_effect", maps={"causal": torch.rand(2, 3, 8)})
    figs = TensorBoardRenderer(max_samples=1, figure_kind="sequence", image_origin="lower").figures([r], x)
    origins = [im.origin for fig in figs.values() for ax in fig.axes for im in ax.get_images()]
    assert origins and set(origins) == {"upper"}


def _probe(x):
    return Probe(x, torch.ones(len(x), dtype=torch.long))


@pytest.mark.parametrize("make, error", [
    (lambda: TensorBoardRenderer(image_origin="bottom"), ValueError),
    (lambda: CausalAuditCallback([InputEffectAudit()], image_origin="bottom"), MisconfigurationException),
    (lambda: audit_model(torch.nn.Linear(3, 2), InputEffectAudit(), torch.randn(4, 3), image_origin="bottom"),
     MisconfigurationException),
])
def test_an_origin_outside_upper_and_lower_is_refused_naming_the_parameter_the_value_and_the_allowed(make, error):
    with pytest.raises(error, match=r"`image_origin` to be one of \['upper', 'lower'\] but got 'bottom'"):
        make()


def _drawn(monkeypatch) -> dict:
    figs: dict = {}
    monkeypatch.setattr(TensorBoardRenderer, "_figure", staticmethod(lambda writer, tag, fig, step: figs.__setitem__(tag, fig)))
    return figs


class _Writer:
    def __getattr__(self, name):  # add_scalar, add_image, add_text, ...: accepted, not kept
        return lambda *args, **kwargs: None


def _audits():
    return [InputEffectAudit(patch_size=2, ace_values=None), CounterfactualAudit(towards="runner_up")]


def _origins(figs: dict) -> set[str]:
    return {im.origin for tag in ("causal/input_effect/maps/sample_0", "causal/counterfactual/images/counterfactuals")
            for ax in figs[tag].axes for im in ax.get_images()}


def test_audit_model_draws_with_its_image_origin(monkeypatch):
    figs = _drawn(monkeypatch)
    x = _spectrograms(4)
    audit_model(_Band(), _audits(), TensorDataset(x, torch.ones(4, dtype=torch.long)), probe_size=4, writer=_Writer(),
                image_origin="lower")
    assert _origins(figs) == {"lower"}


class _Module(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(BINS * FRAMES, 2)

    def forward(self, x):  # noqa: ANN001, ANN201
        return self.fc(x.flatten(1))

    def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        return F.cross_entropy(self(batch[0]), batch[1])

    def configure_optimizers(self):  # noqa: ANN201
        return torch.optim.SGD(self.parameters(), lr=0.0)


def test_the_callback_draws_with_its_image_origin(monkeypatch, tmp_path):
    figs = _drawn(monkeypatch)
    x = _spectrograms(4) + 0.1 * torch.rand(4, 1, BINS, FRAMES, generator=torch.Generator().manual_seed(0))
    data = DataLoader(TensorDataset(x, torch.tensor([0, 1, 0, 1])), batch_size=4)
    callback = CausalAuditCallback(_audits(), probe=data, probe_size=4, image_origin="lower")
    trainer = pl.Trainer(max_epochs=1, logger=TensorBoardLogger(tmp_path), callbacks=[callback], enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False, log_every_n_steps=1)
    trainer.fit(_Module(), data)
    assert _origins(figs) == {"lower"}
