"""Review of e8b8c090 and fdfc0b4f: the sense of a padding mask.

torch's `nn.MultiheadAttention` takes `key_padding_mask` with True = padding, the opposite of Hugging Face's
`attention_mask` (1 = real). Passed as `attention_mask` (the name the docs and the warning ask for), such a mask was read
inverted without a word: every real position left out (InputEffectAudit's effects all 0) and frozen by the counterfactual
search, the padding set instead. It is refused now where the inputs show it (all zero wherever the mask is 1, holding
values where it is 0). Under its own name (`key_padding_mask`) it was not warned of, the padding counted as positions of
effect 0; it is now, with the way. A 0/1 flag or a dropout mask already applied, scattered among the positions, is no
padding and is not warned of.
"""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit, Probe
from lightning_causal.causal.engine.probe_warnings import ProbeContentsWarning
from lightning_causal.causal.structure.counterfactuals import counterfactual_explanation

N, T, F = 10, 6, 3


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(2, T + 1, (N,), generator=g)
    lengths[0] = T
    keep = torch.arange(T)[None] < lengths[:, None]  # True = real
    return torch.randn(N, T, F, generator=g) * keep[..., None], keep


class Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.inp, self.att, self.out = nn.Linear(F, 8), nn.MultiheadAttention(8, 2, batch_first=True), nn.Linear(8, 2)

    def core(self, x: torch.Tensor, key_padding_mask: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        h, _ = self.att(h, h, h, key_padding_mask=key_padding_mask)
        w = (~key_padding_mask).to(x.dtype)[..., None]
        return self.out((h * w).sum(1) / w.sum(1))


class TorchSenseAsAttentionMask(Encoder):
    def forward(self, x, attention_mask):
        return self.core(x, attention_mask.bool())  # True = padding, under the Hugging Face name


class HuggingFaceSense(Encoder):
    def forward(self, x, attention_mask):
        return self.core(x, attention_mask == 0)


class TorchSense(Encoder):
    def forward(self, x, key_padding_mask):
        return self.core(x, key_padding_mask)


SLOTS = torch.arange(T)[:, None].expand(1, T, F)


def test_an_attention_mask_of_torchs_sense_is_refused_not_read_inverted():
    x, keep = _data()
    model = TorchSenseAsAttentionMask().eval()
    with pytest.raises(ValueError, match=r"`attention_mask`.*all zero wherever it is 1.*~key_padding_mask"):
        InputEffectAudit(feature_mask=SLOTS, ace_values=None).run(model, Probe(x, None, (~keep,)))
    with pytest.raises(ValueError, match=r"`attention_mask`.*key_padding_mask"):
        counterfactual_explanation(model, x, 1 - model(x, ~keep).argmax(1), additional_forward_args=(~keep,))


def test_an_attention_mask_of_hugging_faces_sense_is_read():
    x, keep = _data()
    model = HuggingFaceSense().eval()
    for mask in (keep, keep.long()):
        result = InputEffectAudit(feature_mask=SLOTS, ace_values=None).run(model, Probe(x, None, {"attention_mask": mask}))
        assert torch.as_tensor(result.vectors["mean_abs_effect"]).gt(0).all()  # every slot real in some sample, none read as padding


def test_an_unread_key_padding_mask_is_named_with_the_way():
    x, keep = _data()
    with pytest.warns(ProbeContentsWarning, match=r"is 1 where the inputs are all zero.*attention_mask=~key_padding_mask"):
        InputEffectAudit(feature_mask=SLOTS, ace_values=None).run(TorchSense().eval(), Probe(x, None, {"key_padding_mask": ~keep}))


class Flagged(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(F + 1, 2)

    def forward(self, x, flag):
        return self.lin(torch.cat([x, flag.to(x.dtype)[..., None]], -1)).sum(1)


def test_a_scattered_flag_beside_zeroed_positions_is_no_padding():
    g = torch.Generator().manual_seed(1)
    flag = torch.rand(N, T, generator=g) < 0.6
    flag[:, 1], flag[:, 2], flag[:, 3] = False, True, False  # scattered in every row: neither a prefix nor a suffix
    x = torch.rand(N, T, F, generator=g) * flag[..., None]  # zero where the store is closed, or dropped
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        InputEffectAudit(feature_mask=SLOTS, ace_values=None).run(Flagged().eval(), Probe(x, None, (flag.long(),)))
    assert not [w for w in seen if issubclass(w.category, ProbeContentsWarning) and "forward argument" in str(w.message)]
