"""causal_pruning_fn on layers with parametrized weights (weight_norm, spectral_norm)."""

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.nn.utils import parametrizations

from lightning_causal.callbacks import causal_pruning_fn


def _cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3))


@pytest.mark.parametrize("wrap", [parametrizations.weight_norm, parametrizations.spectral_norm])
def test_a_parametrized_layer_is_refused_when_the_method_is_built(wrap):
    model = _cnn()
    wrap(model[2])
    # before: accepted here, then torch's prune raised "cannot assign 'torch.FloatTensor' object to parameter
    # 'weight_orig'" at the first prune, inside ModelPruning after a training epoch
    with pytest.raises(MisconfigurationException, match=r"'2' has a parametrized weight .*remove_parametrizations"):
        causal_pruning_fn(model, torch.rand(4, 1, 6, 6), ["0", "2"])
    causal_pruning_fn(model, torch.rand(4, 1, 6, 6), ["0"]).prune(0.25)  # the others still prune
    assert hasattr(model[0], "weight_mask")
