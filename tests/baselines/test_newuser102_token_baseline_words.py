"""layer_attribute's refusal of a float baseline for token ids renamed the argument `baselines` (its name there) but
still advised `baseline=tokenizer.mask_token_id`, a keyword layer_attribute does not take (TypeError when followed):
the advice now names `baselines=` too."""

import pytest
import torch
from torch import nn

from lightning_causal.baselines import layer_attribute


class Tokens(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb, self.fc, self.head = nn.Embedding(10, 4), nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, ids):
        return self.head(self.fc(self.emb(ids)).mean(1))


def test_the_refusal_names_the_keyword_layer_attribute_takes():
    ids = torch.randint(1, 10, (3, 5), generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="Expected argument `baselines` to be an integer") as caught:
        layer_attribute(Tokens().eval(), ids, "fc", "LayerIntegratedGradients", unit_dim=-1)
    assert "`baseline=" not in str(caught.value) and "`baselines=tokenizer.mask_token_id`" in str(caught.value)
    out = layer_attribute(Tokens().eval(), ids, "fc", "LayerIntegratedGradients", unit_dim=-1, baselines=0)  # the way out runs
    assert out.shape == (3, 4)
