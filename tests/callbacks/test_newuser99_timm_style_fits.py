"""timm-style vision models in a Lightning fit with the audits: a ViT with register tokens, LayerScale, DropPath
(stochastic depth, drawing random numbers in train mode only) and a fused qkv attention, and a BiT-style net of
weight-standardised convolutions (StdConv2d: the weight standardised in forward from `self.weight`, not in place) with
GroupNorm. The audits run the models in eval mode and put back the random state: the same seed gives bit-identical
weights with and without the callback; the heads, register/[CLS] tokens and StdConv2d channels equal hand loops."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit, UnitImportanceAudit
from lightning_causal.causal import unit_effects
from lightning_causal.models import LightningClassifier


class DropPath(nn.Module):
    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


class Attention(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.num_heads, self.qkv, self.proj = heads, nn.Linear(d, 3 * d), nn.Linear(d, d)

    def forward(self, x):
        n, t, d = x.shape
        q, k, v = self.qkv(x).reshape(n, t, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4).unbind(0)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, t, d))


class Block(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.norm1, self.attn, self.gamma1 = nn.LayerNorm(d), Attention(d, heads), nn.Parameter(0.1 * torch.ones(d))
        self.norm2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
        self.gamma2, self.drop_path = nn.Parameter(0.1 * torch.ones(d)), DropPath(0.3)

    def forward(self, x):
        x = x + self.drop_path(self.gamma1 * self.attn(self.norm1(x)))
        return x + self.drop_path(self.gamma2 * self.mlp(self.norm2(x)))


class ViT(nn.Module):  # 3x8x8 images, 4x4 patches: token 0 [CLS], tokens 1-2 registers, tokens 3-6 patches 0-3
    def __init__(self, d: int = 16, heads: int = 4, registers: int = 2):
        super().__init__()
        self.patch_embed = nn.Conv2d(3, d, 4, stride=4)
        self.cls_token, self.reg_token = nn.Parameter(torch.zeros(1, 1, d)), nn.Parameter(torch.zeros(1, registers, d))
        self.pos_embed = nn.Parameter(0.02 * torch.randn(1, 4, d))
        self.blocks = nn.Sequential(Block(d, heads), Block(d, heads))
        self.norm, self.head = nn.LayerNorm(d), nn.Linear(d, 2)

    def forward(self, x):
        t = self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos_embed
        n = len(t)
        t = torch.cat([self.cls_token.expand(n, -1, -1), self.reg_token.expand(n, -1, -1), t], 1)
        return self.head(self.norm(self.blocks(t))[:, 0])


class StdConv2d(nn.Conv2d):
    def forward(self, x):
        w = F.batch_norm(self.weight.reshape(1, self.out_channels, -1), None, None, training=True, momentum=0.0,
                         eps=1e-6).reshape_as(self.weight)
        return F.conv2d(x, w, self.bias, self.stride, self.padding, self.dilation, self.groups)


class BiT(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = StdConv2d(3, 8, 3, padding=1, bias=False)
        self.norm = nn.GroupNorm(2, 8)
        self.conv = StdConv2d(8, 8, 3, padding=1, bias=False)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        x = self.conv(F.relu(self.norm(self.stem(x))))
        return self.head(F.relu(x).mean((2, 3)))


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(48, 3, 8, 8, generator=g) * 0.3
    y = torch.randint(0, 2, (48,), generator=g)
    x[y == 1, :, 0:4, 4:8] = 1.0  # the class: a bright patch 1
    return x, y


def _fit(tmp_path, make, audits):
    pl.seed_everything(0, verbose=False)
    model = LightningClassifier(make(), lr=3e-3)
    x, y = _data()
    callbacks = [CausalAuditCallback(audits, probe_size=8)] if audits else []
    trainer = pl.Trainer(max_epochs=2, logger=False, callbacks=callbacks, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False, default_root_dir=tmp_path)
    trainer.fit(model, DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True),
                DataLoader(TensorDataset(x[:16], y[:16]), batch_size=16))
    return model.model.state_dict(), torch.rand(3)


def _by_hand(model, x, module, width, pre):
    with torch.no_grad():
        out = model(x)
        t = out.argmax(1)
        base = out.gather(1, t[:, None])[:, 0]
        rows = []
        for u in range(width):
            def zero(o, u=u):
                o = o.clone()
                if pre == "heads":
                    o[..., 4 * u: 4 * (u + 1)] = 0  # 4 heads of 4 features side by side
                else:
                    o[:, u] = 0  # a token, a channel
                return o
            handle = (module.register_forward_pre_hook(lambda m, a: (zero(a[0]),)) if pre else
                      module.register_forward_hook(lambda m, a, o: zero(o)))
            rows.append(base - model(x).gather(1, t[:, None])[:, 0])
            handle.remove()
    return torch.stack(rows, 1)


def test_vit_with_registers_and_drop_path(tmp_path):
    audits = [InputEffectAudit(patch_size=4, ace_samples=8),
              UnitImportanceAudit(["model.blocks.0.attn.proj:input", "model.blocks.0:input"],
                                  num_heads={"model.blocks.0.attn.proj:input": 4}, unit_dim={"model.blocks.0:input": 1})]
    (plain, rng_plain), (audited, rng_audited) = _fit(tmp_path / "a", ViT, []), _fit(tmp_path / "b", ViT, audits)
    assert all(torch.equal(plain[k], audited[k]) for k in plain) and torch.equal(rng_plain, rng_audited)
    torch.manual_seed(0)
    vit = ViT().double()
    vit.load_state_dict({k: v.double() for k, v in audited.items()})
    vit.train()  # the estimators run it in eval mode (no DropPath draws) and give its mode back
    x = _data()[0][:6].double()
    heads = unit_effects(vit, x, "blocks.0.attn.proj:input", num_heads=4)
    tokens = unit_effects(vit, x, "blocks.0:input", unit_dim=1)
    assert vit.training
    vit.eval()
    torch.testing.assert_close(heads, _by_hand(vit, x, vit.blocks[0].attn.proj, 4, "heads"), rtol=0, atol=1e-12)
    assert tokens.shape == (6, 7)  # [CLS], 2 registers, 4 patches
    torch.testing.assert_close(tokens, _by_hand(vit, x, vit.blocks[0], 7, "tokens"), rtol=0, atol=1e-12)


def test_bit_std_conv_is_neither_refused_nor_changed(tmp_path):
    audits = [InputEffectAudit(patch_size=4, ace_samples=8), UnitImportanceAudit(["model.stem", "model.conv"])]
    (plain, rng_plain), (audited, rng_audited) = _fit(tmp_path / "a", BiT, []), _fit(tmp_path / "b", BiT, audits)
    assert all(torch.equal(plain[k], audited[k]) for k in plain) and torch.equal(rng_plain, rng_audited)
    bit = BiT().double()
    bit.load_state_dict({k: v.double() for k, v in audited.items()})
    bit.eval()
    x = _data()[0][:6].double()
    for name in ("stem", "conv"):
        module = getattr(bit, name)
        torch.testing.assert_close(unit_effects(bit, x, name, max_batch_size=5), _by_hand(bit, x, module, 8, None),
                                   rtol=0, atol=1e-12)
