"""Review of 4a2bb0d3: docs/recipes.md says that on a timm-style fused `qkv` projection `num_heads=H` is refused (its
slices of 3D / H are no heads) and `num_heads=3H` ranks the query, key and value heads, queries first; no test held it.
Each of the 3H units equals a hand loop zeroing that head's slice of the qkv output."""

import pytest
import torch

from lightning_causal.causal import unit_effects
from tests.callbacks.test_newuser99_timm_style_fits import ViT


def test_fused_qkv_heads():
    torch.manual_seed(0)
    vit = ViT().double().eval()  # 16 features, 4 heads of 4: qkv is 48 wide
    x = torch.rand(5, 3, 8, 8, dtype=torch.float64)
    with pytest.raises(ValueError, match="num_heads"):
        unit_effects(vit, x, "blocks.0.attn.qkv", num_heads=4)
    effects = unit_effects(vit, x, "blocks.0.attn.qkv", num_heads=12)
    qkv = vit.blocks[0].attn.qkv
    with torch.no_grad():
        out = vit(x)
        t = out.argmax(1)
        base = out.gather(1, t[:, None])[:, 0]
        rows = []
        for u in range(12):  # slices 0-3 the query heads, 4-7 the keys, 8-11 the values
            handle = qkv.register_forward_hook(lambda m, a, o, u=u: o.index_fill(-1, torch.arange(4 * u, 4 * u + 4), 0))
            rows.append(base - vit(x).gather(1, t[:, None])[:, 0])
            handle.remove()
    torch.testing.assert_close(effects, torch.stack(rows, 1), rtol=0, atol=1e-12)
    assert bool(effects[:, 8:].abs().sum(0).gt(0).all())  # every value head moves the output
