"""Where the module reading a site's output decided its layout (5c16dfba's consumer rule: the site's input made by
functional code in a shape no module gave), the refusal of the default units said the output "comes from a linear,
embedding, normalisation, attention or recurrent layer", untrue of a ViT's `pos_drop` after its class token's
concatenation (final_read_F F5). It now names the functional code and the module that read it over its last
dimension; a site that does come from such a layer keeps the old words."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects
from tests.causal.test_mends_s41d_consumer_layout import ViT


def test_the_refusal_names_the_module_that_read_the_layout():
    torch.manual_seed(0)
    model, x = ViT().eval(), torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with pytest.raises(ValueError) as refused:
        unit_effects(model, x, "pos_drop", target=0)
    words = str(refused.value)
    assert "(functional code made it, and a MultiheadAttention reads it over its last dimension)" in words
    assert "comes from" not in words


def test_a_site_from_a_linear_layer_keeps_its_words():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).eval()
    with pytest.raises(ValueError, match=r"it comes from a linear, embedding, normalisation, attention or recurrent"):
        unit_effects(model, torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(1)), "1",
                     output=lambda out: out.mean(1))
