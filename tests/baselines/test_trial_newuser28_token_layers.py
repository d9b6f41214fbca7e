"""Captum's layer methods on the hidden units of a model of token ids (newuser28, a Captum maintainer's check).

Captum's LayerIntegratedGradients (integrated in the layer's activations, from those of the baseline tokens),
LayerGradientXActivation and LayerActivation run on a BERT fed token ids; ``layer_attribute`` refused every layer
method on token ids ("use a layer method on the embedding layer", the wrong advice for hidden units), and so
``CaptumBaseline(layers=[...])`` refused text models whatever the layer method. Only LayerConductance, which
integrates along the inputs, cannot take token ids: it is refused naming the others.
"""

from __future__ import annotations

import pytest
import torch
from captum.attr import LayerGradientXActivation, LayerIntegratedGradients
from torch import nn

from lightning_causal.audits.base import Probe
from lightning_causal.audits.captum_baseline import CaptumBaseline, CompareSettings
from lightning_causal.baselines import layer_attribute
from tests.helpers.text import CLS, MASK, PAD, SEP, tiny_bert_classifier, token_batch

LAYER = "bert.encoder.layer.0.intermediate"  # BERT's MLP neurons [N, T, 64]


class _Logits(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bert = tiny_bert_classifier()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.bert(input_ids=input_ids, attention_mask=attention_mask).logits


def test_hidden_layer_methods_on_token_ids_equal_captums_summed_over_positions() -> None:
    model = _Logits().eval()
    ids, mask = token_batch(3, 8)
    t, layer = torch.tensor([0, 1, 1]), model.bert.bert.encoder.layer[0].intermediate
    args = {"attention_mask": mask}
    ours = layer_attribute(model, ids, f"bert.{LAYER}", "LayerIntegratedGradients", target=t, baselines=MASK, unit_dim=-1,
                           options={"n_steps": 8}, additional_forward_args=args)
    ref = LayerIntegratedGradients(model, layer).attribute(ids, baselines=torch.full_like(ids, MASK), target=t, n_steps=8,
                                                           method="gausslegendre", additional_forward_args=(mask,)).sum(1)
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-12)
    ours = layer_attribute(model, ids, f"bert.{LAYER}", "LayerGradientXActivation", target=t, unit_dim=-1, additional_forward_args=args)
    ref = LayerGradientXActivation(model, layer).attribute(ids, target=t, additional_forward_args=(mask,)).sum(1)
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-12)
    assert ours.shape == (3, 64) and ours.abs().max() > 0


def test_layer_conductance_and_a_float_baseline_of_token_ids_are_refused_saying_what_to_give() -> None:
    model = _Logits().eval()
    ids, _ = token_batch(2, 6)
    with pytest.raises(TypeError, match="Expected floating point inputs for LayerConductance .* 'LayerIntegratedGradients' integrates"):
        layer_attribute(model, ids, f"bert.{LAYER}", "LayerConductance", target=0, unit_dim=-1)
    with pytest.raises(ValueError, match=r"Expected argument `baselines` to be an integer \(a token id\)"):
        layer_attribute(model, ids, f"bert.{LAYER}", "LayerIntegratedGradients", target=0, unit_dim=-1)  # the default 0.0
    with pytest.raises(ValueError, match=r"Expected argument `baselines` to be a token id in \[0, 64\)"):
        layer_attribute(model, ids, f"bert.{LAYER}", "LayerIntegratedGradients", target=0, unit_dim=-1, baselines=64)


def test_captum_baseline_sets_a_hidden_layer_method_beside_the_unit_effects_of_a_text_model() -> None:
    model = _Logits().eval()
    ids, mask = token_batch(4, 8)
    probe = Probe(ids, additional_forward_args={"attention_mask": mask})
    common = dict(baseline=MASK, input_layer="bert.bert.embeddings.word_embeddings", special_tokens=(CLS, SEP, PAD),
                  layers=[f"bert.{LAYER}"], unit_dim=-1)
    audit = CaptumBaseline(["LayerGradientXActivation"], settings=CompareSettings(layer_method="LayerGradientXActivation"), **common)
    result = audit.run(model, probe)
    key = f"compare/LayerGradientXActivation-bert.{LAYER}/spearman"
    assert -1 <= result.scalars[key] <= 1
    refused = CaptumBaseline(["LayerGradientXActivation"], **common)  # the default layer method, LayerConductance
    with pytest.raises(ValueError, match="Expected `settings.layer_method` other than 'LayerConductance' .* token inputs"):
        refused.run(model, probe)
