"""docs/recipes.md, 'Vision transformers', runs as printed: the planted cue's patch ranks first, and
the patch, head, neuron and token effects equal hand-written loops (pixels edited by hand, a
hand-written attention for the heads, plain hooks for neurons and tokens), float32 to 1e-5."""

import re
from pathlib import Path

import torch
import torch.nn.functional as F

RECIPES = (Path(__file__).parent.parent / "docs" / "recipes.md").read_text()


def _block() -> str:
    return next(b for b in re.findall(r"```python\n(.*?)```", RECIPES, re.S) if "class ViT(nn.Module)" in b)


def _heads_zeroed(attn, q, kill):  # nn.MultiheadAttention written out, head `kill` of the concatenation zeroed
    e, h = attn.embed_dim, attn.num_heads
    w, b = attn.in_proj_weight, attn.in_proj_bias
    n, t, _ = q.shape
    qq, kk, vv = (F.linear(q, w[i * e:(i + 1) * e], b[i * e:(i + 1) * e]).view(n, t, h, e // h).transpose(1, 2) for i in range(3))
    heads = (torch.softmax(qq @ kk.transpose(-1, -2) / (e // h) ** 0.5, -1) @ vv).transpose(1, 2).reshape(n, t, e)
    heads[..., kill * (e // h):(kill + 1) * (e // h)] = 0.0
    return attn.out_proj(heads)


def test_the_vit_recipe_runs_ranks_the_cue_first_and_equals_hand_written_loops(capsys):
    ns: dict = {}
    exec(compile(_block(), "<recipes.md: vision transformers>", "exec"), ns)  # noqa: S102 - the docs' own example
    assert capsys.readouterr().out.split() == ["6", "6"]
    vit, probe = ns["vit"], ns["probe"]
    with torch.no_grad():
        clean = vit(probe)
        target = clean.argmax(1, keepdim=True)

        def drop(out):
            return (clean.gather(1, target) - out.gather(1, target))[:, 0]

        patches = []
        for g in range(16):
            edited = probe.clone()
            edited[:, :, 2 * (g // 4):2 * (g // 4) + 2, 2 * (g % 4):2 * (g % 4) + 2] = 0.0
            patches.append(drop(vit(edited)))
        patches = torch.stack(patches, 1)
        attn = vit.blocks[0].attn
        heads = []
        for kill in range(4):
            attn.forward = lambda q, k, v, kill=kill, **kw: (_heads_zeroed(attn, q, kill), None)
            heads.append(drop(vit(probe)))
            del attn.forward
        neurons, tokens = [], []
        for u in range(32):
            hook = vit.blocks[1].mlp[1].register_forward_hook(lambda m, i, o, u=u: o.index_fill(-1, torch.tensor([u]), 0.0))
            neurons.append(drop(vit(probe)))
            hook.remove()
        for u in range(17):
            hook = vit.blocks[0].register_forward_pre_hook(lambda m, a, u=u: (a[0].index_fill(1, torch.tensor([u]), 0.0),))
            tokens.append(drop(vit(probe)))
            hook.remove()
    for name, expected in [("patches", patches), ("heads", torch.stack(heads, 1)), ("neurons", torch.stack(neurons, 1)),
                           ("tokens", torch.stack(tokens, 1))]:
        torch.testing.assert_close(ns[name], expected, rtol=0, atol=1e-5, msg=name)
    assert patches.abs().mean(0).argmax() == 6 and patches.abs().mean(0)[6] > 1e-2
