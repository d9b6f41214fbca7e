"""num_heads on a fused query/key/value projection (GPT-2's c_attn, [q | k | v]): num_heads=H cut
it into slices of 3D/H that are not heads, silently."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import Zero, intervene, unit_effects


def _gpt2():
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(vocab_size=40, n_embd=16, n_layer=1, n_head=2, n_positions=16, pad_token_id=0, num_labels=2,
                                     bos_token_id=1, eos_token_id=1)
    torch.manual_seed(0)
    return transformers.GPT2ForSequenceClassification(config).double().eval()


def test_the_heads_count_is_refused_and_three_times_it_is_the_q_k_v_heads():
    model = _gpt2()
    ids = torch.randint(2, 40, (3, 6), generator=torch.Generator().manual_seed(0))
    site = "transformer.h.0.attn.c_attn"
    with pytest.raises(ValueError, match=r"fused query/key/value projection .* num_heads=2 cuts it into slices of 24 .* "
                                         r"num_heads=6 .*'transformer.h.0.attn.c_proj:input'"):
        unit_effects(model, ids, site, num_heads=2, target=1)
    with pytest.raises(ValueError, match="fused query/key/value"), intervene(model, {site: Zero(units=[0], num_heads=2)}):
        pass
    got = unit_effects(model, ids, site, num_heads=6, target=1)
    with torch.no_grad():
        clean = model(ids).logits[:, 1]
        expected = []
        for u in range(6):  # unit u: columns u*8 .. u*8+7 of [q | k | v]: query heads 0, 1, key heads 0, 1, value heads 0, 1
            def zero(_m, _i, out, u=u):
                out = out.clone()
                out[..., u * 8 : (u + 1) * 8] = 0
                return out

            handle = model.transformer.h[0].attn.c_attn.register_forward_hook(zero)
            expected.append(clean - model(ids).logits[:, 1])
            handle.remove()
    assert torch.allclose(got, torch.stack(expected, 1), atol=1e-10)


def test_without_a_head_count_it_warns():
    """A linear layer three times as wide as its input, in a module that names no head count: a
    warning (it may be an MLP's projection), and the effects run."""
    model = nn.Sequential(nn.Linear(4, 12), nn.ReLU(), nn.Linear(12, 2)).double()
    x = torch.randn(5, 4, dtype=torch.float64)
    with pytest.warns(UserWarning, match=r"'0' is a fused query/key/value projection.*num_heads = 3 x the model's heads"):
        unit_effects(model, x, "0", num_heads=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        unit_effects(model, x, "2", num_heads=2)  # 12 -> 2: not three times as wide
