"""Figures of a forecaster of several horizons (outputs [N, H], real-valued labels) audited with
``target=h``: their titles and captions said "explains class 1" and "raises the explained class's
score"; they name the output."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from lightning_causal.audits import CaptumBaseline, CompareSettings, InputEffectAudit, Probe
from lightning_causal.reporting.figure_kinds import MapData, map_figures


def _texts(fig) -> str:
    parts = [fig._suptitle.get_text() if fig._suptitle else ""] + [t.get_text() for t in fig.texts]
    return " | ".join(parts + [t.get_text() for ax in fig.axes for t in (ax.title, ax.xaxis.label)])


def _forecaster_probe() -> tuple[nn.Module, Probe]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(24 * 5, 3))  # [N, 24 steps, 5 features] -> 3 horizons
    x = torch.randn(6, 24, 5)
    return model, Probe(x, torch.randn(6, 3) * 2.5)


def test_maps_of_a_chosen_horizon_name_the_output() -> None:
    model, probe = _forecaster_probe()
    for audit in (InputEffectAudit(target=1, ace_values=None), CaptumBaseline(("Saliency",), target=1, settings=CompareSettings(score="raw"))):
        result = audit.run(model, probe)
        assert result.meta["regression"] is True
        text = " || ".join(_texts(fig) for _, fig in map_figures(MapData(probe.first, result.maps, audit.name, result.meta),
                                                                  kind="sequence_features_last"))
        assert "explains output 1" in text and "raises the explained output" in text, text
        assert "class" not in text, text
        flat = probe.first.reshape(6, -1)
        maps = {k: v.reshape(6, -1) for k, v in result.maps.items()}
        tabular = " || ".join(_texts(fig) for _, fig in map_figures(MapData(flat, maps, audit.name, result.meta), kind="tabular"))
        assert "explaining output 1" in tabular and "class" not in tabular, tabular
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # target=None on a regression warns (test_trial_forecast_target.py)
        mixed = InputEffectAudit(ace_values=None).run(model, probe)
    flat_maps = {k: v.reshape(6, -1) for k, v in mixed.maps.items()}
    (_, fig), *_ = map_figures(MapData(probe.first.reshape(6, -1), flat_maps, "ie", mixed.meta), kind="tabular")
    if len(set(mixed.meta["targets"])) > 1:
        assert "each sample's largest output" in _texts(fig)


def test_a_classifier_keeps_its_classes() -> None:
    model, probe = _forecaster_probe()
    result = InputEffectAudit(target=1, ace_values=None).run(model, Probe(probe.first, torch.tensor([0, 1, 2, 0, 1, 2])))
    assert "regression" not in result.meta
    (_, fig), *_ = map_figures(MapData(probe.first, result.maps, "ie", result.meta), kind="sequence_features_last")
    assert "explains class 1" in _texts(fig)


def test_sobol_maps_of_horizon_0_name_output_0_not_the_output() -> None:
    from lightning_causal.audits import SobolAudit
    from lightning_causal.reporting.figure_kinds import explained_quantity

    model, probe = _forecaster_probe()
    features = torch.arange(5).expand(1, 24, 5)
    result = SobolAudit(n=64, feature_mask=features, probability=False, target=0, n_bootstrap=0).run(model, probe)
    assert result.meta["outputs"] == 3 and explained_quantity(result.meta) == "output 0"
    (_, fig), *_ = map_figures(MapData(probe.first, result.maps, "sobol", result.meta), kind="sequence_features_last")
    assert "of output 0" in _texts(fig), _texts(fig)
    one = nn.Sequential(nn.Flatten(), nn.Linear(24 * 5, 1))  # one output: still "the output"
    single = SobolAudit(n=64, feature_mask=features, probability=False, target=0, n_bootstrap=0).run(one, Probe(probe.first, probe.labels[:, 0]))
    assert single.meta["outputs"] == 1 and explained_quantity(single.meta) == "the output"


def test_class_names_name_the_horizons() -> None:
    model, probe = _forecaster_probe()
    result = InputEffectAudit(target=1, ace_values=None, class_names=["t+1", "t+2", "t+3"]).run(model, probe)
    (_, fig), *_ = map_figures(MapData(probe.first, result.maps, "ie", result.meta), kind="sequence_features_last")
    assert "explains output 't+2'" in _texts(fig)
