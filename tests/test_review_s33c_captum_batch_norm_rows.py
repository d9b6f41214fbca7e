"""Captum's layer methods on a model that normalises by its batch in eval mode (``BatchNorm1d(track_running_stats=False)``
on features ``[N, C]``): ``layer_attribute`` and ``input_layer_attribute`` gave torch's own "Expected more than 1 value
per channel when training" (their site check's pass of one row), where ``attribute`` and the causal estimators refuse
the model in words (c52ecbe8's ``coupled_rows_refused`` took an ``IndexError``/``RuntimeError`` only)."""

import pytest
import torch
from torch import nn

from lightning_causal.baselines.input_layer_methods import input_layer_attribute
from lightning_causal.baselines.layer_methods import layer_attribute

_WORDS = "Expected the model to treat samples independently"


def _features() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 6), nn.BatchNorm1d(6, track_running_stats=False), nn.ReLU(), nn.Linear(6, 3)).eval()


def _tokens() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Embedding(9, 4), nn.Flatten(), nn.BatchNorm1d(12, track_running_stats=False),
                         nn.Linear(12, 3)).eval()


@pytest.mark.parametrize("method", ["LayerConductance", "LayerIntegratedGradients", "LayerGradientXActivation",
                                    "LayerActivation"])
def test_layer_methods_refuse_a_batch_normalised_model_in_words(method):
    x = torch.randn(8, 5, generator=torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match=_WORDS) as caught:  # before: "Expected more than 1 value per channel"
        layer_attribute(_features(), x, "0", method, target=0)
    assert "more than 1 value per channel" not in str(caught.value)


@pytest.mark.parametrize("method", ["LayerIntegratedGradients", "LayerFeatureAblation", "LayerGradientXActivation"])
def test_input_layer_methods_refuse_a_batch_normalised_model_in_words(method):
    ids = torch.randint(1, 9, (8, 3), generator=torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match=_WORDS):
        input_layer_attribute(_tokens(), ids, "0", method, target=0)


def test_an_ordinary_models_own_value_error_goes_on_unchanged():
    class Picky(nn.Module):  # refuses inputs of more than 3 columns, in every pass: the model's own error
        def forward(self, x):
            if x.shape[1] > 3:
                raise ValueError("Picky takes 3 columns")
            return x

    with pytest.raises(ValueError, match="Picky takes 3 columns"):
        layer_attribute(nn.Sequential(Picky(), nn.Linear(4, 2)), torch.randn(4, 4), "0", "LayerGradientXActivation",
                        target=0)
