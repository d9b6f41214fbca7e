"""A model that retrieves over its batch (each sample attends to the other rows: the batch is the memory) explained by
Captum's methods through ``attribute``: the refusal was the stacked-rows one, saying the forward depends on its batch
"once its inputs or units are intervened on", a branch the clean samples' check "cannot see", with the way out of a
control-flow model; the samples as given already depended on each other (trial newuser96). It now names that, in the
causal estimators' words (``input_effects`` refuses the same model so)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.baselines import attribute
from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.stacked_rows import StackedRowsError


class _BatchRetrieval(nn.Module):
    """Each row reads the others' values through attention over the batch, itself masked out."""

    def __init__(self) -> None:
        super().__init__()
        self.enc, self.v, self.head = nn.Linear(4, 8), nn.Linear(8, 8), nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.enc(x).relu()
        s = (h @ h.T).masked_fill(torch.eye(x.shape[0], dtype=torch.bool), -1e4)
        return self.head(torch.cat([h, s.softmax(1) @ self.v(h)], 1))


@pytest.mark.parametrize("method", ["Saliency", "IntegratedGradients", "FeatureAblation"])
def test_captum_on_a_batch_retrieval_model_is_refused_as_the_samples_depend_on_their_batch(method: str) -> None:
    torch.manual_seed(0)
    model, x = _BatchRetrieval().eval(), torch.randn(12, 4)
    with pytest.raises(ValueError, match="Expected the model to treat samples independently") as causal:
        input_effects(model, x, target=0)
    with pytest.raises(ValueError, match="outputs of probe samples .* run alone differ from their outputs") as captum:
        attribute(model, x, method, target=0)
    assert not isinstance(captum.value, StackedRowsError) and "attention across its rows" in str(captum.value)
    assert str(causal.value).split(": ")[1] == str(captum.value).split(": ")[1]  # the same cause
