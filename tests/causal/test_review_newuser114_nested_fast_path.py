"""255a6873's record of each module's input shape (sample_independence._InputShapes) read ``.shape`` of the nested
tensor that ``nn.TransformerEncoder``'s fast path passes its layers in eval mode beside a padding mask
(``enable_nested_tensor=True``, torch's default): every audit of such a text classifier was refused ('probe samples
[0, 1] run alone failed ... NestedTensorImpl doesn't support sizes'), found in the review of newuser114's padded reads."""

import torch
from torch import nn

from lightning_causal.causal import input_effects


class Classifier(nn.Module):
    def __init__(self, nested: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        layer = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True, dropout=0.0)
        self.enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=nested)
        self.head = nn.Linear(8, 3)

    def forward(self, x, attention_mask):
        return self.head(self.enc(x, src_key_padding_mask=attention_mask == 0)[:, 0])


def test_a_transformer_encoder_on_its_nested_fast_path_is_audited_as_without_it():
    lengths = torch.tensor([12, 5, 9, 12, 3, 7])
    mask = (torch.arange(12) < lengths[:, None]).long()
    x = torch.randn(6, 12, 8, generator=torch.Generator().manual_seed(1)) * mask[..., None]
    effects = {nested: input_effects(Classifier(nested).eval(), x, torch.arange(12).reshape(1, 12, 1), target=0,
                                     additional_forward_args={"attention_mask": mask}) for nested in (True, False)}
    assert torch.allclose(effects[True], effects[False], atol=1e-5)
    assert bool((effects[True][lengths == 3][:, 3:] == 0).all()) and effects[True].abs().sum() > 0
