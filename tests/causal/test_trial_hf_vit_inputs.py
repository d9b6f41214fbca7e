"""A Hugging Face ViT (image 32x32, patch 8): what ``input_layer=`` refuses, and what it points to."""

from __future__ import annotations

import pytest
import torch

from lightning_causal.causal import input_effects, unit_effects

transformers = pytest.importorskip("transformers")


def test_input_layer_on_vit_patch_embeddings_names_what_intervenes_on_patch_tokens():
    """``input_layer=`` needs an output that starts with the input's shape; a ViT's patch embeddings ``[N, 17, D]``
    of images ``[N, 3, 32, 32]`` were refused without saying how to intervene on the tokens or patches."""
    torch.manual_seed(0)
    model = transformers.ViTForImageClassification(transformers.ViTConfig(
        image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        num_labels=2)).eval()
    with pytest.raises(ValueError, match=r"unit_effects\(model, x, 'vit.embeddings', unit_dim=1\).*17 tokens.*patch_mask"):
        input_effects(model, torch.randn(2, 3, 32, 32), input_layer="vit.embeddings")
    assert unit_effects(model, torch.randn(2, 3, 32, 32), "vit.embeddings", unit_dim=1).shape == (2, 17)
