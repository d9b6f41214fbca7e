"""Final read of 83e2e99a: an `attention_mask` of torch's sense (True = padding) was refused by `padding_positions`
only; `input_padding`, which `input_effects`, the layer map, the graph's context and the padded-read check read, returned
it inverted, so `input_effects` left every real position out and set the padding (effects all 0, a word only that every
group already equals its baseline). Both read the mask through one check now."""

import pytest
import torch

from lightning_causal.causal.effects.input_effects import input_effects
from lightning_causal.causal.engine.ablation import input_padding

from .test_review_s34f_padding_sense import (
    SLOTS,
    HuggingFaceSense,
    TorchSenseAsAttentionMask,
    _data,
)


def test_input_padding_refuses_a_mask_of_torchs_sense():
    x, keep = _data()
    with pytest.raises(ValueError, match=r"`attention_mask`.*all zero wherever it is 1.*~key_padding_mask"):
        input_padding((x,), {"attention_mask": ~keep})
    assert torch.equal(input_padding((x,), {"attention_mask": keep})[0][..., 0], ~keep)  # Hugging Face's sense: read


def test_input_effects_refuses_a_mask_of_torchs_sense_and_reads_hugging_faces():
    x, keep = _data()
    with pytest.raises(ValueError, match=r"`attention_mask`.*~key_padding_mask"):
        input_effects(TorchSenseAsAttentionMask().eval(), x, SLOTS, additional_forward_args=(~keep,))
    effects = input_effects(HuggingFaceSense().eval(), x, SLOTS, additional_forward_args=(keep,))
    assert bool(effects.abs().sum(0).gt(0).all())  # every slot real in some sample, none read as padding
