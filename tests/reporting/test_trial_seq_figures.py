"""TensorBoard figures of sequence inputs: features-last [N, T, F] inputs of an LSTM whose shape does
not say which axis is time, and univariate [N, T] series (Sobol' maps, counterfactuals)."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import CounterfactualAudit, SobolAudit
from lightning_causal.audits.base import AuditResult, Probe
from lightning_causal.causal.structure.counterfactuals import CounterfactualSettings
from lightning_causal.reporting.tensorboard import TensorBoardRenderer

T, F = 10, 8  # an LSTM's batch_first input of fewer than 4 F steps: the shape rule cannot tell it from [N, C, T]


class _Writer:
    """Records what the renderer writes (texts and layouts are ignored)."""

    def add_histogram(self, *args, **kwargs):
        pass

    def add_text(self, *args, **kwargs):
        pass

    def add_custom_scalars(self, *args, **kwargs):
        pass

    def flush(self):
        pass


def _render(kind, results, inputs, labels=None):
    """The figures the renderer draws, by tag."""
    figures = {}
    renderer = TensorBoardRenderer(figure_kind=kind)
    renderer._figure = lambda writer, tag, fig, step: figures.__setitem__(tag, fig)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        renderer.render(_Writer(), 0, results, inputs, probe_labels=labels)
    return figures, [str(w.message) for w in caught]


def _features_last_result():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, T, F, generator=g)
    effect = torch.zeros(3, T, F)
    effect[:, 6, 2] = 1.0  # the effect of feature 2 at time step 6
    effect[:, 1, 5] = -0.5
    return x, AuditResult("input_effect", maps={"causal": effect}, meta={"targets": [1, 1, 1]})


def test_sequence_features_last_draws_time_steps_across_and_one_row_per_feature():
    x, r = _features_last_result()
    figures, caught = _render("sequence_features_last", [r], x)
    assert not [m for m in caught if "figure kind" in m]
    fig = figures["causal/input_effect/maps/sample_0"]
    panel = fig.axes[1]  # input, causal map, then the colour bars
    assert panel.get_images()[0].get_array().shape == (F, T)
    assert torch.equal(torch.as_tensor(panel.get_images()[0].get_array().data), r.maps["causal"][0].T)
    assert panel.get_images()[0].get_array()[2, 6] == 1.0 and panel.get_images()[0].get_array()[5, 1] == -0.5
    assert "feature" in panel.get_ylabel() and fig.axes[1].get_xlabel() == "time step"


def test_sequence_kind_on_a_shape_that_does_not_say_which_axis_is_time_warns_naming_features_last():
    x, r = _features_last_result()
    figures, caught = _render("sequence", [r, AuditResult("other", maps=dict(r.maps))], x)
    notes = [m for m in caught if "sequence_features_last" in m]
    assert len(notes) == 1 and "[3, 10, 8] channels first" in notes[0] and "10 time steps of 8 features" in notes[0]
    assert figures["causal/input_effect/maps/sample_0"].axes[1].get_images()[0].get_array().shape == (T, F)  # as before
    _, caught = _render("sequence", [AuditResult("conv", maps={"causal": torch.zeros(3, 2, 40)})], torch.zeros(3, 2, 40))
    assert not [m for m in caught if "sequence_features_last" in m]  # [N, C, T] with T >= 4 C: no doubt


def _univariate_model():
    torch.manual_seed(0)
    model = nn.Linear(16, 2).double()
    with torch.no_grad():
        model.weight.zero_()
        model.weight[1, 4:8] = 1.0  # class 1's score: the sum of steps 4-7
        model.bias.zero_()
    return model


def test_univariate_series_get_sobol_maps_and_counterfactuals_under_sequence_kind():
    model = _univariate_model()
    x = torch.randn(64, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    labels = 1 - model(x).argmax(1)  # every sample misclassified: counterfactuals for each
    probe = Probe(x, labels)
    sobol = SobolAudit(n=256, probability=False, target=1).run(model, probe)
    cf = CounterfactualAudit(max_samples=2, settings=CounterfactualSettings(steps=30, lr=0.1)).run(model, probe)
    figures, _ = _render("sequence", [sobol, cf], x, labels)
    assert {"causal/sobol/maps/sample_0/total", "causal/counterfactual/images/counterfactuals"} <= set(figures)
    # the bars are the audit's indices: column t holds its own group's total index
    total_ax = figures["causal/sobol/maps/sample_0/total"].axes
    bars = [ax for ax in total_ax if ax.get_ylabel() == "total"][0]
    heights = torch.tensor([p.get_height() for p in bars.patches], dtype=torch.float64)
    assert torch.allclose(heights, sobol.vectors["total"].double(), atol=1e-6)
    var = x[:, 4:8].var(0, unbiased=False)
    assert torch.allclose(heights[4:8], var / var.sum(), atol=0.1) and heights[:4].max() < 1e-6  # analytic: only steps 4-7 count
    # the counterfactual's lines are the probe's samples
    cf_fig = figures["causal/counterfactual/images/counterfactuals"]
    assert len(cf_fig.axes[0].get_lines()) >= 1 and len(cf_fig.axes[0].get_lines()[0].get_ydata()) == 16
    # tabular (the same [N, D] data, no figure kind): neither figure, as before
    figures, _ = _render(None, [sobol, cf], x, labels)
    assert not {t for t in figures if "sobol/maps" in t or "counterfactual/images" in t}


@pytest.mark.parametrize("kind", ["sequence_features_last", "sequence"])
def test_counterfactuals_of_features_last_inputs_follow_the_figure_kind(kind):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(T * F, 2))
    x = torch.randn(8, T, F, generator=torch.Generator().manual_seed(2))
    labels = 1 - model(x).argmax(1)
    cf = CounterfactualAudit(max_samples=2, settings=CounterfactualSettings(steps=10)).run(model, Probe(x, labels))
    figures, _ = _render(kind, [cf], x, labels)
    panel = figures["causal/counterfactual/images/counterfactuals"].axes[0].get_images()[0].get_array()
    assert panel.shape == ((F, T) if kind == "sequence_features_last" else (T, F))


def test_counterfactuals_of_sequences_label_their_step_and_row_axes():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(T * F, 2))
    x = torch.randn(8, T, F, generator=torch.Generator().manual_seed(2))
    labels = 1 - model(x).argmax(1)
    cf = CounterfactualAudit(max_samples=2, settings=CounterfactualSettings(steps=10)).run(model, Probe(x, labels))
    fig = _render("sequence_features_last", [cf], x, labels)[0]["causal/counterfactual/images/counterfactuals"]
    grid = [ax for ax in fig.axes if ax.get_images()]  # 3 rows x 2 samples, row by row
    assert [ax.get_xlabel() for ax in grid[4:6]] == ["time step", "time step"]
    assert [ax.get_ylabel().split("\n")[-1] for ax in grid[::2]] == ["feature"] * 3
    ticks = [float(t) for t in grid[4].get_xticks() if -0.5 <= t <= T - 0.5]
    assert ticks and all(t.is_integer() for t in ticks) and len(grid[0].get_yticks()) > 1
    fig = _render("image", [cf], x, labels)[0]["causal/counterfactual/images/counterfactuals"]  # an image: no ticks, as before
    assert all(len(ax.get_xticks()) == 0 for ax in fig.axes if ax.get_images())


@pytest.mark.parametrize("channels", [1, 3])
def test_a_long_sequence_title_is_wrapped_inside_the_figure(channels):
    from lightning_causal.reporting.figure_kinds import MapData, map_figures
    from lightning_causal.reporting.tensorboard import figure_image

    meta = {"targets": [1, 1], "class_names": ["normal sinus rhythm", "atrial fibrillation episode"]}
    g = torch.Generator().manual_seed(0)
    data = MapData(torch.randn(2, channels, 64, generator=g), {"causal": torch.randn(2, channels, 64, generator=g)},
                   "input_effect_ecg_windows", meta, torch.tensor([0, 1]))
    (_, fig), *_ = map_figures(data, "sequence")
    figure_image(fig)  # draws it
    box, width = fig._suptitle.get_window_extent(), fig.get_figwidth() * fig.dpi
    assert box.x0 >= 0 and box.x1 <= width, (box, width)
    assert "explains class 'atrial fibrillation episode'" in fig._suptitle.get_text()


def test_the_input_heatmap_of_a_sequence_names_its_rows():
    x, r = _features_last_result()  # 8 features: the input is drawn as a heatmap, one row per feature
    fig = _render("sequence_features_last", [r], x)[0]["causal/input_effect/maps/sample_0"]
    assert fig.axes[0].get_images()[0].get_array().shape == (F, T) and fig.axes[0].get_ylabel() == "input\nfeature"


def test_the_callback_takes_the_features_last_kind_and_names_it_when_refusing_another():
    from lightning.pytorch.utilities.exceptions import MisconfigurationException

    from lightning_causal import CausalAuditCallback, InputEffectAudit

    cb = CausalAuditCallback([InputEffectAudit()], figure_kind="sequence_features_last")
    assert cb._renderer.figure_kind == "sequence_features_last"
    with pytest.raises(MisconfigurationException, match="'sequence_features_last'.*but got 'lstm'"):
        CausalAuditCallback([InputEffectAudit()], figure_kind="lstm")
