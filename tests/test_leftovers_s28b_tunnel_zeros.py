"""CaptumBaseline and a NoiseTunnel method whose noise saturates the model: on a table of mixed scales NoiseTunnel's
default level (15% of the range of all the values: stdevs=900 where one column spans 6000) drives a tanh into its
flat tails at every noisy copy, and NoiseTunnel-Saliency gives (nearly) 0 everywhere; the card said either nothing of
it (values of 1e-3 of Saliency's: not exactly 0) or "give 0 everywhere (a gradient of 0: round, a step, dead
ReLUs)", naming neither the noise level nor the option that sets it. A NoiseTunnel method that gives ~0 to nearly all
(``TUNNEL_ZERO_SHARE``) of what the same method without noise scores is now noted, and warned of once, with its level
as ``stdevs=``; zeros the method has without noise too keep the note of a gradient of 0."""

import warnings

import torch
from torch import nn

from lightning_causal.audits import CaptumBaseline
from lightning_causal.audits.base import Probe
from lightning_causal.reporting.summary import markdown_summary

# column 0 in [-3, 3] (range 6), column 1 in [-3000, 3000] (range 6000): the default level 0.15 * 6000 = 900
_X = torch.tensor([[-3.0, 3000.0], [3.0, -3000.0], [0.0, 0.0], [1.0, 1000.0]])


class _Scaled(nn.Module):
    """A model that brings column 1 to column 0's scale itself (x * [1, 1/1000]) before a tanh layer: Saliency is not 0,
    but noise of sd 900 on column 0 saturates every tanh at nearly every noisy copy."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 2))

    def forward(self, x):
        return self.net(x * torch.tensor([1.0, 1e-3]))


def _run(audit, model, x):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result = audit.run(model, Probe(x))
    return result, [str(w.message) for w in seen]


def _said(texts):
    return [t for t in texts if "NoiseTunnel-Saliency" in t and ("~0 on" in t or "0 everywhere" in t or "exactly 0" in t)]


def test_a_tunnel_of_nearly_zeros_under_the_default_level_is_noted_with_the_level_and_the_option():
    result, told = _run(CaptumBaseline(("Saliency", "NoiseTunnel(Saliency)")), _Scaled(), _X)
    tunnel, bare = result.maps["NoiseTunnel-Saliency"], result.maps["Saliency"]
    assert bool((tunnel != 0).all()) and float(tunnel.abs().max()) < 0.01 * float(bare.abs().max())  # ~0, not 0
    notes = _said(result.meta["notes"])
    assert len(notes) == 1 and notes[0].startswith("NoiseTunnel-Saliency: ~0 on 100% of what Saliency without noise scores")
    assert "`stdevs=900` (the default)" in notes[0]
    card = markdown_summary(0, [result])  # the level and the option within the 160 characters a card note shows
    assert "- captum_baseline: NoiseTunnel-Saliency: ~0 on 100% of what Saliency without noise scores; its noise " \
           "`stdevs=900` (the default) may saturate the model (tanh, sigmoid)" in card
    assert _said(told) == [f"CaptumBaseline 'captum_baseline': {notes[0]}"]  # once


def test_a_tunnel_of_zeros_everywhere_where_saliency_is_not_is_noted_for_its_level_not_as_a_gradient_of_0():
    """The tanh of a model reading column 1 raw is saturated at three rows by the inputs themselves (Saliency 0 there
    too); on the fourth (0, 0) only the noise, stdevs=600 given, saturates it: NoiseTunnel-Saliency is 0 everywhere."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 2))
    audit = CaptumBaseline(("Saliency", ("NoiseTunnel(Saliency)", {"stdevs": 600.0})))
    result, told = _run(audit, model, _X)
    assert bool((result.maps["NoiseTunnel-Saliency"] == 0).all()) and bool((result.maps["Saliency"][2] != 0).all())
    notes = _said(result.meta["notes"])
    assert len(notes) == 1 and notes[0].startswith("NoiseTunnel-Saliency: ~0 on 100% of what Saliency without noise scores; "
                                                   "its noise `stdevs=600` may")
    assert len(_said(told)) == 1  # not also the warning of a model whose gradient is 0
    assert not [n for n in result.meta["notes"] if "NoiseTunnel-Saliency" in n and n is not notes[0]]


def test_zeros_of_the_method_without_noise_too_keep_the_note_of_a_gradient_of_0():
    class Rounded(nn.Module):  # a gradient of 0 everywhere, with or without noise
        def forward(self, x):
            return torch.round(x @ torch.tensor([[1.0, -1.0], [0.5, 2.0]]))

    x = torch.tensor([[0.2, 1.4], [1.3, -0.4], [-0.8, 0.9], [2.1, 0.3]])
    result, _ = _run(CaptumBaseline(("NoiseTunnel(Saliency)", "FeatureAblation")), Rounded(), x)
    assert not [n for n in result.meta["notes"] if "~0 on" in n]
    assert [n for n in result.meta["notes"] if n.startswith("['NoiseTunnel-Saliency'] give 0 everywhere (a gradient of 0")]


def test_a_level_that_does_not_saturate_is_no_note():
    audit = CaptumBaseline(("Saliency", ("NoiseTunnel(Saliency)", {"stdevs": 0.5})))
    result, told = _run(audit, _Scaled(), _X)
    assert not _said(result.meta.get("notes", [])) and not _said(told)
