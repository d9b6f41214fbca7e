"""torch's ``nn.TransformerEncoder`` runs its layers on nested tensors in eval mode beside ``src_key_padding_mask`` (its
fast path, the default ``enable_nested_tensor=True``): the layer map read their outputs' ``.shape`` and failed with
torch's "NestedTensorImpl doesn't support sizes. Please file an issue" (review_leftovers_s44b 4f). It now refuses naming
the way out, ``enable_nested_tensor=False``, which, followed, gives the map."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import layer_causal_map


class Encoder(nn.Module):
    def __init__(self, nested: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(30, 16)
        layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=nested)
        self.head = nn.Linear(16, 2)

    def forward(self, ids, attention_mask):
        h = self.enc(self.emb(ids), src_key_padding_mask=attention_mask == 0)
        m = attention_mask[..., None].float()
        return self.head((h * m).sum(1) / m.sum(1))


def _probe():
    g = torch.Generator().manual_seed(1)
    lengths = torch.tensor([16, 9, 12, 5, 14, 7])
    mask = (torch.arange(16)[None] < lengths[:, None]).long()
    return torch.randint(2, 30, (6, 16), generator=g).masked_fill(mask == 0, 0), mask


@pytest.mark.parametrize("layers", [None, ["enc.layers.0", "enc.layers.1"]])
def test_nested_layers_are_refused_with_the_way_out(layers):
    ids, mask = _probe()
    with pytest.raises(TypeError, match="enable_nested_tensor=False"):
        layer_causal_map(Encoder(nested=True).eval(), ids, layers=layers, baseline=0,
                         additional_forward_args={"attention_mask": mask})


def test_the_way_out_gives_the_map():
    ids, mask = _probe()
    model = Encoder(nested=False).eval()
    with torch.no_grad():  # the same outputs as the fast path's
        torch.testing.assert_close(model(ids, mask), Encoder(nested=True).eval()(ids, mask))
    lm = layer_causal_map(model, ids, layers=["enc.layers.0", "enc.layers.1"], baseline=0,
                          additional_forward_args={"attention_mask": mask})
    assert lm.layers == ["enc.layers.0", "enc.layers.1"] and torch.isfinite(torch.as_tensor(lm.response)).all()
