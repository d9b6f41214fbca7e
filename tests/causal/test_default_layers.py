"""The default layers of the layer causal map: the chain of repeated blocks of a transformer (its
residual stream) or a ResNet, every leaf with parameters otherwise.

The default was every leaf module with parameters: on a ViT the map drew q_proj -> k_proj ->
v_proj -> o_proj as a chain (and merged "layernorm_before..q_proj", "k_proj..v_proj" into nodes),
although the three projections run side by side on the same input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.audits import LayerMapAudit, Probe
from lightning_causal.causal.engine.groups import patch_mask
from lightning_causal.causal.structure.default_layers import block_candidates, leaf_layers
from lightning_causal.causal.structure.layer_map import layer_causal_map
from lightning_causal.models import MLP, DeepCNN, DigitsCNN, ResNet18
from tests.helpers.bert import tiny_llama
from tests.helpers.models import all_hook_counts
from tests.helpers.text import MASK, tiny_bert_classifier, token_batch


def _vit():
    transformers = pytest.importorskip("transformers")
    config = transformers.ViTConfig(image_size=16, patch_size=4, num_channels=3, hidden_size=32, num_hidden_layers=2,
                                    num_attention_heads=2, intermediate_size=64, num_labels=3)
    torch.manual_seed(0)
    model = transformers.ViTForImageClassification(config).eval()
    blocks = [n for n, m in model.named_modules() if isinstance(m, transformers.models.vit.modeling_vit.ViTLayer)]
    return model, torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(1)), patch_mask((3, 16, 16), 8), {}, 0.0, blocks


def _bert():
    model = tiny_bert_classifier(seed=4, classes=3)
    ids, att = token_batch(3, 6, seed=6)
    return model, ids, None, {"attention_mask": att}, MASK, ["bert.encoder.layer.0", "bert.encoder.layer.1"]


def _llama():
    model = tiny_llama()
    ids = torch.randint(1, 30, (3, 5), generator=torch.Generator().manual_seed(1))
    return model, ids, None, {}, 1, ["model.layers.0", "model.layers.1"]


class _Encoder(nn.Module):
    """A classifier on torch's nn.TransformerEncoder (2 layers)."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(4, 16)
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True), 2,
                                             enable_nested_tensor=False)
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        return self.head(self.encoder(self.inp(x)).mean(1))


def _torch_encoder():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(1))
    return _Encoder().eval(), x, None, {}, 0.0, ["encoder.layers.0", "encoder.layers.1"]


@pytest.mark.parametrize("make", [_vit, _bert, _llama, _torch_encoder], ids=["vit", "bert", "llama", "torch_encoder"])
def test_default_layers_of_a_transformer_are_its_blocks(make):
    # before: the leaves, q/k/v drawn as a chain (ViT: 19 layers, 'vit.layers.0.attention.k_proj..v_proj' a node;
    # BERT: word -> token-type embeddings -> ... -> query -> key -> value; nn.TransformerEncoder: norm1 -> linear1,
    # the attention left out since its out_proj never runs as a module)
    model, x, mask, afa, baseline, blocks = make()
    assert len(blocks) == 2
    got = layer_causal_map(model, x, mask, baseline=baseline, additional_forward_args=afa or None, max_rows=None)
    assert got.layers == blocks
    named = layer_causal_map(model, x, mask, blocks, baseline=baseline, additional_forward_args=afa or None, max_rows=None)
    torch.testing.assert_close(got.cka, named.cka, rtol=0, atol=0)
    torch.testing.assert_close(got.response, named.response, rtol=0, atol=0)
    assert all_hook_counts(model) == 0


def test_layer_map_audit_defaults_to_the_blocks_of_a_vit_and_draws_them():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from lightning_causal.reporting.layer_map_figures import layer_map_figure

    model, x, _, _, _, blocks = _vit()
    lm = LayerMapAudit(patch_size=8, max_rows=None).run(model, Probe(x)).graphs["layer_map"]
    assert lm["layers"] == blocks
    assert [node["layers"] for node in lm["nodes"] if node["layers"]] in ([blocks], [blocks[:1], blocks[1:]])
    fig = layer_map_figure(lm)
    assert fig.axes[0].get_yticks().tolist() == [0, 1]  # the CKA matrix over the two blocks only
    import matplotlib.pyplot as plt

    plt.close(fig)


@pytest.mark.parametrize(
    ("make", "x", "want"),
    [
        (lambda: DigitsCNN(channels=(3, 4), hidden=8), torch.rand(2, 1, 8, 8), ["conv1", "conv2", "fc1", "fc2"]),
        (lambda: DeepCNN(depth=6, width=4), torch.rand(2, 1, 8, 8),
         ["features.0", "features.2", "features.4", "features.7", "features.9", "features.11", "head.2"]),
        (lambda: MLP(5, hidden=(6, 6)), torch.rand(2, 5), ["net.0", "net.2", "net.4"]),
        # identical blocks of one layer each (Linear, ReLU): their leaves already are the chain
        (lambda: nn.Sequential(*[nn.Sequential(nn.Linear(5, 5), nn.ReLU()) for _ in range(3)], nn.Linear(5, 2)),
         torch.rand(2, 5), ["0.0", "1.0", "2.0", "3"]),
    ],
    ids=["digits_cnn", "deep_cnn", "mlp", "sequential_of_linear_relu"],
)
def test_plain_cnns_and_mlps_keep_every_leaf_with_parameters(make, x, want):
    model = make().eval()
    assert leaf_layers(model) == want and block_candidates(model) == []
    assert layer_causal_map(model, x).layers == want


class _Branch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)

    def forward(self, h):
        return self.b(torch.tanh(self.a(h)))


class _Parallel(nn.Module):
    """Three identical branches on the same input, summed: a candidate list, but not a chain."""

    def __init__(self) -> None:
        super().__init__()
        self.branches = nn.ModuleList(_Branch() for _ in range(3))
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(sum(branch(x) for branch in self.branches))


class _Routed(_Parallel):
    """Top-1 routing: each branch (expert) runs on the rows routed to it only."""

    def forward(self, x):
        top = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
        out = torch.zeros_like(x)
        for e, expert in enumerate(self.branches):
            rows = top == e
            if rows.any():
                out[rows] = expert(x[rows])
        return self.head(out)


@pytest.mark.parametrize("model_type", [_Parallel, _Routed])
def test_identical_blocks_that_do_not_run_as_a_chain_are_not_the_default(model_type):
    torch.manual_seed(0)
    model = model_type().eval()
    x = torch.tensor([[1.0, 1.0, 0.5, 0.2], [-1.0, 1.0, 0.3, 0.1], [-1.0, -1.0, 0.2, 0.4], [0.5, 2.0, 0.1, 0.3]])
    assert block_candidates(model) == [["branches.0", "branches.1", "branches.2"]]
    leaves = ["branches.0.a", "branches.0.b", "branches.1.a", "branches.1.b", "branches.2.a", "branches.2.b", "head"]
    # the leaves, as before; experts that run on some rows of the probe only are left out of them
    if model_type is _Parallel:
        assert layer_causal_map(model, x).layers == leaves
    else:
        with pytest.warns(UserWarning, match=r"leaves out .*'branches.0.a' returned \[1, 4\] for 4 samples.*an expert"):
            assert layer_causal_map(model, x).layers == ["head"]
    assert all_hook_counts(model) == 0


def test_a_resnet_defaults_to_its_blocks_not_its_shortcuts_drawn_in_a_chain():
    # before: 41 leaves, 'layers.2.b2' -> 'layers.2.shortcut.0' -> ... although the projection shortcut reads the block's input
    torch.manual_seed(0)
    model = ResNet18(width=4).train()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    lm = layer_causal_map(model, x, patch_mask((3, 32, 32), 16))
    assert lm.layers == [f"layers.{i}" for i in range(8)]
    assert model.training and all(m.training for m in model.modules()) and all_hook_counts(model) == 0


class _KeywordBlocks(nn.Module):
    """Residual blocks called with keywords, a mask tensor before the hidden states (as some
    Hugging Face models call their layers); ``fail`` raises in the second block."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.inp, self.head, self.fail = nn.Linear(3, 4), nn.Linear(4, 2), fail
        self.blocks = nn.ModuleList(_MaskedBlock() for _ in range(3))

    def forward(self, x):
        h, mask = self.inp(x), torch.ones(x.shape[0], 4)
        for i, block in enumerate(self.blocks):
            if self.fail and i == 1:
                raise RuntimeError("boom")
            h = block(mask=mask, hidden_states=h)
        return self.head(h)


class _MaskedBlock(_Branch):
    def forward(self, mask, hidden_states):
        return hidden_states + mask * super().forward(hidden_states)


def test_blocks_called_with_keywords_are_a_chain_and_a_failing_forward_leaves_no_hooks():
    torch.manual_seed(0)
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    model = _KeywordBlocks().eval()
    assert layer_causal_map(model, x).layers == ["blocks.0", "blocks.1", "blocks.2"]
    failing = _KeywordBlocks(fail=True).eval()
    with pytest.raises(RuntimeError, match="boom"):
        layer_causal_map(failing, x)
    assert all_hook_counts(failing) == 0 and all_hook_counts(model) == 0


class _StagedResNet(nn.Module):
    """torchvision's layout: stages ``layer1`` ... ``layer3``, each an nn.Sequential of basic blocks
    (no single list holds half of the layers)."""

    def __init__(self) -> None:
        from lightning_causal.models import BasicBlock

        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4)
        self.layer1 = nn.Sequential(BasicBlock(4, 4), BasicBlock(4, 4))
        self.layer2 = nn.Sequential(BasicBlock(4, 8, 2), BasicBlock(8, 8))
        self.layer3 = nn.Sequential(BasicBlock(8, 8, 2))
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        h = self.layer3(self.layer2(self.layer1(torch.relu(self.bn1(self.conv1(x))))))
        return self.fc(h.mean((2, 3)))


class _Stage(nn.Module):
    """Two residual blocks, then a downsampling linear layer (Swin's, ConvNeXt's stage)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(_MaskedBlockAt(width) for _ in range(2))
        self.down = nn.Linear(width, width)

    def forward(self, h):
        for block in self.blocks:
            h = block(h)
        return self.down(h)


class _MaskedBlockAt(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(width, width), nn.Linear(width, width)

    def forward(self, h):
        return h + self.b(torch.tanh(self.a(h)))


class _Hierarchical(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inp, self.stages, self.head = nn.Linear(3, 4), nn.ModuleList(_Stage(4) for _ in range(2)), nn.Linear(4, 2)

    def forward(self, x):
        h = self.inp(x)
        for stage in self.stages:
            h = stage(h)
        return self.head(h)


def test_blocks_of_one_class_across_stages_form_the_chain_and_stages_do_where_they_do_not():
    torch.manual_seed(0)
    resnet = _StagedResNet().eval()
    lm = layer_causal_map(resnet, torch.rand(2, 3, 8, 8), patch_mask((3, 8, 8), 4))
    assert lm.layers == ["layer1.0", "layer1.1", "layer2.0", "layer2.1", "layer3.0"]
    # Swin-like: the stages hold their downsampling layers too, so they come before the blocks (which
    # do not chain across stages: blocks.1 -> down -> the next stage's blocks.0)
    model = _Hierarchical().eval()
    assert block_candidates(model) == [["stages.0", "stages.1"], ["stages.0.blocks.0", "stages.0.blocks.1", "stages.1.blocks.0",
                                                                   "stages.1.blocks.1"]]
    assert layer_causal_map(model, torch.randn(4, 3)).layers == ["stages.0", "stages.1"]
    assert all_hook_counts(model) == 0 and all_hook_counts(resnet) == 0


class _Lora(nn.Module):
    """PEFT's layout of a LoRA-wrapped linear layer, written by hand: the frozen ``base_layer``
    and the adapter ``lora_B(lora_A(x))`` beside it, on the same input."""

    def __init__(self, base: nn.Linear, r: int = 2) -> None:
        super().__init__()
        self.base_layer = base
        self.lora_A = nn.ModuleDict({"default": nn.Linear(base.in_features, r, bias=False)})
        self.lora_B = nn.ModuleDict({"default": nn.Linear(r, base.out_features, bias=False)})
        nn.init.normal_(self.lora_B["default"].weight)  # PEFT starts B at 0; trained, it is not

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base_layer(x) + 0.5 * self.lora_B["default"](self.lora_A["default"](x))


class _Backbone(nn.Module):
    """A user's module that happens to call a submodule ``base_layer`` (no adapter): not one layer."""

    def __init__(self) -> None:
        super().__init__()
        self.base_layer, self.head = nn.Linear(4, 6), nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.base_layer(x)))


def test_a_lora_wrapped_layer_is_one_layer_of_the_map_not_three_in_a_chain():
    """The default layers of a model with LoRA adapters (PEFT's ``base_layer``/``lora_A``/``lora_B``)
    were the frozen base layer and the two adapter matrices of each wrapped layer, drawn as a chain
    though they run side by side, and the wrapper's output (base + adapter: what the next layer
    reads) was in no layer of the map. The wrapper is now the layer: the default map equals the
    map over the wrappers named by hand."""
    torch.manual_seed(0)
    model = nn.Sequential(_Lora(nn.Linear(4, 8)), nn.ReLU(), _Lora(nn.Linear(8, 3))).eval()
    x = torch.randn(12, 4, generator=torch.Generator().manual_seed(1))
    assert leaf_layers(model) == ["0", "2"]
    got = layer_causal_map(model, x, max_rows=None)
    named = layer_causal_map(model, x, layers=["0", "2"], max_rows=None)
    assert got.layers == ["0", "2"]
    torch.testing.assert_close(got.cka, named.cka, rtol=0, atol=0)
    torch.testing.assert_close(got.response, named.response, rtol=0, atol=0)
    assert leaf_layers(_Backbone()) == ["base_layer", "head"]  # a submodule called base_layer alone is no adapter
