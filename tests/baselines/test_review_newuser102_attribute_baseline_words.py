"""The refusal of a float baseline for token ids by Captum's input-level `attribute`, whose argument is `baselines`,
advised `baseline=tokenizer.mask_token_id`, a keyword `attribute` does not take (a TypeError when followed), as
`layer_attribute`'s did before e6763335: both now say it in one function, `ablation.as_baselines_words`."""

import pytest
import torch
from torch import nn

from lightning_causal.baselines import attribute


class Tokens(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb, self.head = nn.Embedding(10, 4), nn.Linear(4, 2)

    def forward(self, ids):
        return self.head(self.emb(ids).mean(1))


def test_attribute_names_the_keyword_it_takes():
    ids = torch.randint(1, 10, (3, 5), generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="Expected argument `baselines` to be an integer") as caught:
        attribute(Tokens().eval(), ids, "FeatureAblation", baselines=0.5, target=0)
    assert "`baseline=" not in str(caught.value) and "`baselines=tokenizer.mask_token_id`" in str(caught.value)
    out = attribute(Tokens().eval(), ids, "FeatureAblation", baselines=0, target=0)  # the way out runs
    assert out.shape == ids.shape
