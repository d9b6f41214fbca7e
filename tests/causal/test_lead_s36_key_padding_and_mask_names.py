"""A key-padding attention mask is not an observation mask, and the observation-mask warning names the parameter (the
lead, session 36, from a final read of c77cd2b1/1716c9e6/6d658700).

1716c9e6 left out square masks ``[N, T, T]`` that are triangular or symmetric, but not the plain key-padding mask (one
row of real positions for every query, ``m[i, j] = r_j``) beside embeddings ``[N, T, C]`` with ``C == T``: it was read
entry by entry, every channel ``c >= length`` of a real step marked unobserved, never set and given effect 0 in silence
(0.0 where a hand pass gives 0.1366). And the warning of a mask under another name called ``forward(values, mask)``'s
``mask`` "the positional forward argument 0", which a user reads as ``values``.
"""

import warnings

import torch

from lightning_causal.audits import InputEffectAudit, Probe
from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.ablation import padding_positions
from tests.causal.test_review_s36e_attention_matrices import Attention, N, T, _embeddings
from tests.causal.test_trial_newuser81_observation_mask import MaskNamed, _series


def _key_padded() -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([4, 2, 3, 4, 1])
    real = (torch.arange(T)[None] < lengths[:, None]).double()
    x = _embeddings() * real[..., None]
    return x, real[:, None, :].expand(N, T, T).contiguous()


def test_a_key_padding_mask_is_not_read_entry_by_entry() -> None:
    x, keys = _key_padded()
    assert x.shape == keys.shape  # the premise: C == T, the mask has the input's own shape
    # read as the padded steps it leaves out for every query (leftovers_s40b: a mask of one matrix per sample), not
    # entry by entry: a real step's channels c >= length stay real
    pad = padding_positions(x, {"attention_mask": keys})
    assert pad.shape == (N, T, 1) and torch.equal(pad[..., 0], keys[:, 0] == 0)


def test_a_real_step_keeps_its_effect_under_a_key_padding_mask() -> None:
    x, keys = _key_padded()
    model = Attention().double().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eff = input_effects(model, x, additional_forward_args={"attention_mask": keys}, target=0).view(N, T, T)
    moved = x.clone()
    moved[1, 0, 3] = 0.0  # real step 0 of sample 1 (length 2), channel 3
    with torch.no_grad():
        hand = model(x, keys)[1, 0] - model(moved, keys)[1, 0]
    assert abs(float(hand)) > 1e-3
    torch.testing.assert_close(eff[1, 0, 3], hand, rtol=1e-9, atol=1e-12)


def test_the_mask_warning_names_the_parameter() -> None:
    values, mask = _series(3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        InputEffectAudit(target=0, ace_values=None).run(MaskNamed().eval(), Probe(values, None, (mask,)))
    said = [str(w.message) for w in caught if "observation mask" in str(w.message)]
    assert said and all("the forward argument 'mask'" in s for s in said), said
