"""The prefix cache across residual connections: every path (torch.fx split with live values,
module-hook split, full forward passes) gives the numbers of a brute-force hook loop."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lightning_causal.causal import Zero, intervene, unit_effects
from lightning_causal.causal.engine.prefix_cache import cache_prefix
from lightning_causal.causal.engine.state import audit_mode
from lightning_causal.causal.engine.suffix import suffix_module
from lightning_causal.models import ResNet18
from tests.helpers.bert import tiny_bert, token_batch
from tests.helpers.models import all_hook_counts, seeded

G = torch.Generator().manual_seed(0)
X_RGB = torch.rand(4, 3, 8, 8, generator=G, dtype=torch.float64)


def brute_force(model, x, layer, num_units, target, afa=None, **layout):
    """f_t(x) - f_t(x | do(h_u := 0)) by one full forward per unit with `intervene`."""
    kwargs = afa or {}

    def logits():
        out = model(*(x if isinstance(x, tuple) else (x,)), **kwargs)
        return out.logits if hasattr(out, "logits") else out

    with torch.no_grad():
        f0 = logits().gather(1, target[:, None])[:, 0]
        cols = []
        for u in range(num_units):
            with intervene(model, {layer: Zero(units=u, **layout)}):
                cols.append(f0 - logits().gather(1, target[:, None])[:, 0])
    return torch.stack(cols, 1)


def check_all_paths(model, x, layer, expected_path, afa=None, **layout):
    """unit_effects on the automatic path equals the forced hook path, the full path and brute force."""
    out, info = unit_effects(model, x, layer, additional_forward_args=afa, return_info=True, **layout)
    assert info.path == expected_path, info.reason
    full, info_full = unit_effects(model, x, layer, additional_forward_args=afa, use_suffix=False, return_info=True, **layout)
    assert info_full.path == "full"
    target = model(*(x if isinstance(x, tuple) else (x,)), **(afa or {}))
    target = (target.logits if hasattr(target, "logits") else target).argmax(1)
    ref = brute_force(model, x, layer, out.shape[1], target, afa, **layout)
    torch.testing.assert_close(out, full, atol=1e-10, rtol=0)
    torch.testing.assert_close(out, ref, atol=1e-10, rtol=0)
    assert out.abs().max() > 1e-6  # the interventions change the output
    with audit_mode(model):
        hooks = cache_prefix(model, x, layer, path="hooks", additional_forward_args=afa)
    n = out.shape[0]
    rows = torch.arange(n)
    assert hooks.path == "hooks"
    torch.testing.assert_close(hooks(hooks.value[rows], rows), hooks.output, atol=1e-10, rtol=0)
    assert all_hook_counts(model) == 0 and not any("forward" in m.__dict__ for m in model.modules())
    return out


@pytest.mark.parametrize("layer", ["layers.0.c1", "layers.0.b2", "layers.1.c1", "layers.1.shortcut.0", "layers.1.c2", "layers.1", "stem.0"])
def test_resnet_blocks_identity_and_projection_shortcuts(layer):
    model = seeded(ResNet18(num_classes=3, width=4, blocks=(1, 1)), 1).double().eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_var.fill_(1.5)
    assert suffix_module(model, layer) is None or layer in ("layers.1", "stem.0")  # skips cross the others
    check_all_paths(model, X_RGB, layer, "fx")


class TwiceUsed(nn.Module):
    """The same linear layer applied twice: do(h_u := 0) acts on both calls."""

    def __init__(self) -> None:
        super().__init__()
        self.inp, self.shared, self.out = nn.Linear(3, 4), nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x):
        h = torch.tanh(self.inp(x))
        return self.out(torch.tanh(self.shared(torch.tanh(self.shared(h)))) + h)


def test_layer_used_twice():
    model = seeded(TwiceUsed(), 2).double().eval()
    x = torch.randn(5, 3, generator=G, dtype=torch.float64)
    assert suffix_module(model, "shared") is None
    check_all_paths(model, x, "shared", "fx")


class TwoBack(nn.Module):
    """A skip connection carrying the output of `l1` past `l2` and `l3` (two layers back)."""

    def __init__(self) -> None:
        super().__init__()
        self.l1, self.l2, self.l3, self.head = nn.Linear(3, 5), nn.Linear(5, 5), nn.Linear(5, 5), nn.Linear(5, 2)

    def forward(self, x):
        a = F.relu(self.l1(x))
        b = F.relu(self.l2(a))
        return self.head(F.relu(self.l3(b) + a))


def test_skip_from_two_layers_back():
    model = seeded(TwoBack(), 3).double().eval()
    x = torch.randn(6, 3, generator=G, dtype=torch.float64)
    for layer in ("l2", "l3"):
        check_all_paths(model, x, layer, "fx")


class Masked(nn.Module):
    """A forward argument used after the cut (an attention-mask-like per-sample tensor), the batch
    size read before the cut and used after it, and an in-place ReLU on the cut's output."""

    def __init__(self) -> None:
        super().__init__()
        self.l1, self.l2, self.relu, self.head = nn.Linear(4, 6), nn.Linear(6, 6), nn.ReLU(inplace=True), nn.Linear(6, 2)

    def forward(self, x, mask):
        n = x.shape[0]
        h = self.relu(self.l2(torch.tanh(self.l1(x))))
        return self.head((h * mask).view(n, -1))


def test_forward_arguments_travel_by_row_and_batch_sizes_refuse_fx():
    model = seeded(Masked(), 4).double().eval()
    x = torch.randn(5, 4, generator=G, dtype=torch.float64)
    mask = (torch.rand(5, 6, generator=G) > 0.3).double()
    out = check_all_paths(model, x, "l2", "hooks", afa={"mask": mask})
    _, info = unit_effects(model, x, "l2", additional_forward_args={"mask": mask}, return_info=True)
    assert "depend on the batch size" in info.reason
    assert torch.all(out[mask == 0] == 0)  # masked units have no effect
    with audit_mode(model):
        cache = cache_prefix(model, x, "l2", additional_forward_args={"mask": mask})
    torch.testing.assert_close(cache.value, model.l2(torch.tanh(model.l1(x))))  # not the in-place ReLU's result


class NoBatchSize(Masked):
    def forward(self, x, mask):
        return self.head(self.relu(self.l2(torch.tanh(self.l1(x)))) * mask + x.sum(1, keepdim=True))


def test_fx_caches_forward_arguments_and_skips():
    model = seeded(NoBatchSize(), 5).double().eval()
    x = torch.randn(5, 4, generator=G, dtype=torch.float64)
    mask = (torch.rand(5, 6, generator=G) > 0.3).double()
    check_all_paths(model, x, "l2", "fx", afa={"mask": mask})
    check_all_paths(model, x, "l2", "fx", afa={"mask": mask[:1]})  # a shared (non per-sample) argument


@pytest.mark.parametrize(("layer", "layout"), [
    ("bert.encoder.layer.0.attention.self", {"num_heads": 4}),
    ("bert.encoder.layer.1.attention.self", {"num_heads": 4}),
    ("bert.encoder.layer.0.intermediate", {"unit_dim": -1}),
    ("bert.encoder.layer.1.output", {"unit_dim": -1}),
])
def test_bert_heads_and_neurons(layer, layout):
    model = tiny_bert()
    ids, mask = token_batch()
    out = check_all_paths(model, ids, layer, "hooks", afa={"attention_mask": mask}, **layout)
    assert out.shape[1] == (4 if "num_heads" in layout else 64 if "intermediate" in layer else 32)
    with pytest.raises(ValueError, match="path='fx'"):
        cache_prefix(model, ids, layer, path="fx", additional_forward_args={"attention_mask": mask})


def test_suffix_rows_broadcast_cached_skip_values():
    model = seeded(ResNet18(num_classes=3, width=4, blocks=(1, 1)), 6).double().eval()
    with audit_mode(model):
        cache = cache_prefix(model, X_RGB, "layers.1.c1")
        rows = torch.tensor([3, 0, 3])
        zero = torch.zeros_like(cache.value[rows])
        block = model.layers[1]
        expected = model.head(F.relu(block.b2(block.c2(F.relu(block.b1(zero)))) + block.shortcut(model.layers[0](model.stem(X_RGB[rows])))))
        torch.testing.assert_close(cache(zero, rows), expected)
        torch.testing.assert_close(cache(lambda h: h, rows), cache.output[rows])


def test_cache_prefix_argument_checks():
    model = seeded(TwoBack(), 7).eval()
    with pytest.raises(ValueError, match="path"):
        cache_prefix(model, torch.zeros(2, 3), "l2", path="fast")
    with pytest.raises(ValueError, match="close matches"):
        cache_prefix(model, torch.zeros(2, 3), "l9")


class TinyTransformer(nn.Module):
    """torch's TransformerEncoderLayer takes a fused fast path (its submodules never called) in
    evaluation mode when no hooks are attached."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(50, 16)
        self.enc = nn.TransformerEncoderLayer(16, nhead=2, dim_feedforward=32, batch_first=True, dropout=0.0)
        self.head = nn.Linear(16, 3)

    def forward(self, ids, mask):
        return self.head(self.enc(self.emb(ids), src_key_padding_mask=mask == 0).mean(1))


@pytest.mark.parametrize(("layer", "layout"), [("enc.linear1", {"unit_dim": -1}), ("enc.self_attn", {"unit_dim": -1})])
def test_a_fused_fast_path_does_not_skip_the_intervention(layer, layout):
    model = seeded(TinyTransformer(), 8).eval()
    ids = torch.randint(0, 50, (5, 7), generator=G)
    mask = torch.ones(5, 7, dtype=torch.long)
    mask[0, 5:] = 0
    afa = {"mask": mask}
    out, info = unit_effects(model, ids, layer, additional_forward_args=afa, return_info=True, **layout)
    target = model(ids, mask).argmax(1)
    torch.testing.assert_close(out, brute_force(model, ids, layer, out.shape[1], target, afa, **layout), atol=1e-5, rtol=0)
    assert info.path == "hooks" and out.abs().max() > 1e-3


def test_one_sample_with_forward_arguments():
    model = tiny_bert(9)
    ids, mask = token_batch(n=1)
    layer = "bert.encoder.layer.1.attention.self"
    out = check_all_paths(model, ids, layer, "hooks", afa={"attention_mask": mask}, num_heads=4)
    assert out.shape == (1, 4)
