"""CaptumBaseline's dry run on the probe's first 2 samples (b2f9bae) ignores its warnings that a gradient method gives
exactly 0 in every probe sample (ProbeContentsWarnings: two samples whose ReLUs are all off say nothing of the whole
probe), but not the same warning of a layer method (warn_layer_unreached: "the model's gradient after the layer is 0
at every sample"), a plain UserWarning: a fit whose first 2 probe samples had the ReLU after the layer off warned at
set-up, while the audits of the whole probe gave the layer's units non-zero scores. That warning is a
ProbeContentsWarning now; a layer that reads forward arguments only (the same at any samples) still warns at the dry run."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import CaptumBaseline, Probe
from lightning_causal.causal import ProbeContentsWarning

LAYER_ZERO = "LayerConductance gives every unit of '0' exactly 0 in every probe sample"


def _model() -> nn.Sequential:
    """``out_0 = relu(h_0 + h_1)``, ``h = x`` the layer '0' (its units zeroed move the ReLU's input)."""
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1), nn.ReLU(), nn.Linear(1, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(2))
        model[0].bias.zero_()
        model[1].weight.copy_(torch.tensor([[1.0, 1.0]]))
        model[1].bias.zero_()
        model[3].weight.copy_(torch.tensor([[1.0], [-1.0]]))
        model[3].bias.zero_()
    return model.eval()


# the first 2 samples: h_0 + h_1 < 0 (the ReLU off: LayerConductance 0 on the path from the baseline 0), yet
# do(h_0 := 0) turns it on (a causal effect); the others pass it
X = torch.tensor([[-1.0, 0.5], [-0.6, 0.3], [1.0, 2.0], [0.5, 0.3], [2.0, -1.0]])


def _said(run) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run()
    return [w for w in caught if LAYER_ZERO in str(w.message)]


def test_the_dry_runs_two_dead_samples_do_not_say_the_layers_gradient_is_zero():
    audit = CaptumBaseline(methods=("Saliency",), target=0, layers=["0"])
    assert _said(lambda: audit.dry_run(_model(), Probe(X))) == []
    assert _said(lambda: audit.run(_model(), Probe(X))) == []  # the whole probe: the ReLU passes at samples 2-4
    (two,) = _said(lambda: audit.run(_model(), Probe(X[:2])))  # a probe of those 2 samples: said, of the samples
    assert two.category is ProbeContentsWarning
    assert "the model's gradient after the layer is 0 at every sample" in str(two.message)
    assert "ReLUs after it off at every probe sample" in str(two.message)


class _TabBranch(nn.Module):
    """Layer ``tab`` reads the forward argument only: LayerConductance along the explained input is 0 there."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.x, self.tab, self.head = nn.Linear(3, 2), nn.Linear(2, 2), nn.Linear(4, 2)

    def forward(self, x, tab):
        return self.head(torch.cat([torch.tanh(self.x(x)), torch.tanh(self.tab(tab))], 1))


def test_a_layer_that_reads_forward_arguments_only_is_still_named_at_the_dry_run():
    x, tab = torch.randn(6, 3), torch.randn(6, 2)
    audit = CaptumBaseline(methods=("Saliency",), target=0, layers=["tab"])
    with pytest.warns(UserWarning, match=r"every unit of 'tab' exactly 0.*does not depend on the explained input") as caught:
        audit.dry_run(_TabBranch().eval(), Probe(x, None, (tab,)))
    assert not [w for w in caught if "does not depend" in str(w.message) and issubclass(w.category, ProbeContentsWarning)]
