"""CaptumBaseline and NoiseTunnel's default level on a table of mixed scales (adfc86ce): the statement that the level
is far larger than a column's range was a console warning only, told once per NoiseTunnel method, and never reached
the result's notes, which the TensorBoard text card shows; it is one note now, and one warning. And each input element's
standard deviation over the probe was computed twice per run (``varies`` and ``input_noise_sd``): once now, the stability
noise unchanged."""

import math
import warnings

import pytest
import torch
from torch import nn

import lightning_causal.audits.captum_baseline as captum_baseline
import lightning_causal.causal.engine.input_noise as input_noise
from lightning_causal.audits import CaptumBaseline
from lightning_causal.audits.base import Probe
from lightning_causal.reporting.summary import markdown_summary

# column 0 in [-3, 3] (range 6), column 1 in [-3000, 3000] (range 6000): the default level 0.15 * 6000 = 900
_X = torch.tensor([[-3.0, 3000.0], [3.0, -3000.0], [0.0, 0.0], [1.0, 1000.0]])


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 2))


def test_the_default_level_on_a_mixed_table_is_one_note_on_the_card_and_one_warning():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result = CaptumBaseline(("NoiseTunnel(Saliency)", "NoiseTunnel(IntegratedGradients)")).run(_model(), Probe(_X))
    told = [str(w.message) for w in seen if "default noise level" in str(w.message)]
    notes = [n for n in result.meta.get("notes", []) if "default noise level" in n]
    assert len(told) == 1 and notes == told  # the same statement, once for the two methods that share the level
    assert notes[0].startswith("NoiseTunnel's default noise level stdevs=900, ")
    card = markdown_summary(0, [result])
    # the card cuts a note at 160 characters: the level and the column are within them
    assert "- captum_baseline: NoiseTunnel's default noise level stdevs=900, 15% of the range of all the inputs' " \
           "values: 150 times the range of column 0 (6;" in card


def test_a_level_given_is_no_note():
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", message=".*gives exactly 0.*")  # tanh saturated at column 1's values
        result = CaptumBaseline((("NoiseTunnel(Saliency)", {"stdevs": 0.5}),)).run(_model(), Probe(_X))
    assert not [n for n in result.meta.get("notes", []) if "default noise level" in n]


def test_each_elements_sd_is_computed_once_and_the_stability_noise_is_unchanged(monkeypatch):
    calls = []
    original = input_noise.element_sd

    def counted(x):
        calls.append(tuple(x.shape))
        return original(x)

    monkeypatch.setattr(input_noise, "element_sd", counted)
    monkeypatch.setattr(captum_baseline, "element_sd", counted, raising=False)
    x = torch.tensor([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0], [-1.0, -1.0]])  # each column's sd sqrt(4 / 3)
    default = CaptumBaseline(("Saliency",), seed=3).run(_model(), Probe(x))
    assert calls == [(4, 2)]
    # the default noise, 0.1 sd of each element, is noise_sigma = 0.1 sqrt(4 / 3) where every element has that sd
    given = CaptumBaseline(("Saliency",), seed=3, noise_sigma=0.1 * math.sqrt(4 / 3)).run(_model(), Probe(x))
    stability = [k for k in default.scalars if "stability" in k]
    assert stability and all(default.scalars[k] == pytest.approx(given.scalars[k], rel=1e-5) for k in stability)
