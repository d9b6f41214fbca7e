"""newuser46's trial: Hugging Face audio classifiers (Wav2Vec2, Whisper) audited on their own dict batches.

A Wav2Vec2 feature extractor yields ``{"input_values": [N, T], ...}`` and Whisper's ``{"input_features":
[N, n_mels, frames], ...}``; the default ``unpack_batch`` knew neither key, so every audit of such a model stopped at
set-up ("Expected a batch mapping with one of the input keys [...]") until the user wrote an ``unpack_batch``.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from lightning_causal import InputEffectAudit, audit_model
from lightning_causal.batches import default_unpack_batch


def test_the_default_reads_the_audio_keys_of_hugging_face_feature_extractors():
    wave, mel, labels = torch.randn(3, 160), torch.randn(3, 8, 20), torch.tensor([0, 1, 0])
    x, y, kwargs = default_unpack_batch({"input_values": wave, "labels": labels})
    assert x is wave and y is labels and kwargs is None
    x, y, kwargs = default_unpack_batch({"input_features": mel, "labels": labels})
    assert x is mel and y is labels and kwargs is None


class _Waves(Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_values": self.x[i], "labels": self.y[i]}


class _Classifier(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        return self.model(input_values=input_values).logits


def _wav2vec2() -> nn.Module:
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.Wav2Vec2Config(
        vocab_size=10, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, conv_dim=(8, 8),
        conv_stride=(5, 2), conv_kernel=(10, 3), num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
        feat_extract_norm="group", num_labels=2, classifier_proj_size=8)
    return _Classifier(transformers.Wav2Vec2ForSequenceClassification(config)).double().eval()


def test_a_wav2vec2_classifier_is_audited_on_its_dict_batches_with_the_default_unpack_batch():
    model = _wav2vec2()
    g = torch.Generator().manual_seed(0)
    x = 0.1 * torch.randn(6, 400, generator=g, dtype=torch.float64)
    x[:, 200:300] += torch.sin(2 * math.pi * 0.05 * torch.arange(100, dtype=torch.float64))
    windows = (torch.arange(400) // 100).reshape(1, 400)
    (result,) = audit_model(model, [InputEffectAudit(feature_mask=windows, ace_values=None)],
                            DataLoader(_Waves(x, torch.tensor([0, 1, 0, 1, 0, 1])), batch_size=3), probe_size=6)
    with torch.no_grad():
        clean = model(x)
        target = clean.argmax(1, keepdim=True)
        hand = torch.stack([(clean.gather(1, target) - model(torch.where(windows == w, 0.0, x)).gather(1, target))[:, 0]
                            for w in range(4)], 1)  # each window set to 0, the explained (predicted) class
    effects = result.maps["effect"].reshape(6, 400)
    assert torch.allclose(effects[:, ::100].double(), hand, atol=1e-6)


def test_wav2vec2_heads_neurons_and_conv_filters_equal_zeroing_them_by_hand():
    from lightning_causal.causal import unit_effects

    model = _wav2vec2()
    x = torch.randn(4, 400, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        clean = model(x)
    target = clean.argmax(1, keepdim=True)

    def zeroed(module: nn.Module, units: int, pre: bool, dim: int) -> torch.Tensor:  # f(x) - f(x | unit u := 0), per unit
        columns = []
        for u in range(units):
            def zero(t: torch.Tensor, u: int = u) -> torch.Tensor:
                width = t.shape[dim] // units
                return t.clone().index_fill_(dim, torch.arange(u * width, (u + 1) * width), 0.0)
            handle = (module.register_forward_pre_hook(lambda m, a: (zero(a[0]),)) if pre else
                      module.register_forward_hook(lambda m, a, out: zero(out)))
            with torch.no_grad():
                columns.append((clean.gather(1, target) - model(x).gather(1, target))[:, 0])
            handle.remove()
        return torch.stack(columns, 1)

    w2v = model.model.wav2vec2
    heads = unit_effects(model, x, "model.wav2vec2.encoder.layers.0.attention.out_proj:input", num_heads=2, target=target[:, 0])
    neurons = unit_effects(model, x, "model.wav2vec2.encoder.layers.0.feed_forward.intermediate_dense", unit_dim=-1,
                           target=target[:, 0])
    filters = unit_effects(model, x, "model.wav2vec2.feature_extractor.conv_layers.1.conv", target=target[:, 0])
    assert torch.allclose(heads, zeroed(w2v.encoder.layers[0].attention.out_proj, 2, True, -1), atol=1e-12)
    assert torch.allclose(neurons, zeroed(w2v.encoder.layers[0].feed_forward.intermediate_dense, 32, False, -1), atol=1e-12)
    assert torch.allclose(filters, zeroed(w2v.feature_extractor.conv_layers[1].conv, 8, False, 1), atol=1e-12)
    assert heads.abs().max() > 1e-6 and filters.abs().max() > 1e-6  # effects that a wrong unit would miss
