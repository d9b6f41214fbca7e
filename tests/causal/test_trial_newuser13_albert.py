"""The newuser13 trial: ALBERT (`AlbertForSequenceClassification`, one layer module shared by every layer) from a
tiny config. What the estimators do with a module called once per layer, checked against a brute-force hook in
float64; the layer map's default layers on it; `layer_causal_map` given a baseline where `layers=` stands."""

from __future__ import annotations

import warnings

import pytest
import torch

from lightning_causal.causal import causal_graph, input_effects, layer_causal_map, unit_effects

transformers = pytest.importorskip("transformers")
_ = transformers.AlbertForSequenceClassification  # the lazy import at collection, not in the first test

LAYER = "albert.encoder.albert_layer_groups.0.albert_layers.0"
HEADS = f"{LAYER}.attention.dense:input"  # the heads side by side: the input of ALBERT's output projection


def _albert():
    torch.manual_seed(0)
    config = transformers.AlbertConfig(vocab_size=100, embedding_size=16, hidden_size=32, num_hidden_layers=2,
                                       num_attention_heads=4, intermediate_size=64, max_position_embeddings=32,
                                       pad_token_id=0, num_labels=2)
    model = transformers.AlbertForSequenceClassification(config).double().eval()
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 100, (3, 8), generator=g)
    mask = torch.ones(3, 8, dtype=torch.long)
    ids[1, 6:], mask[1, 6:] = 0, 0  # right padding
    return model, ids, mask


def _logit(model, ids, mask):
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask).logits[:, 1]


def test_a_head_of_the_shared_albert_layer_is_zeroed_at_every_call():
    """docs/your_model.md: a module called several times is intervened on at every call. ALBERT's one layer runs
    once per layer (2 here): head 1's effect equals zeroing its 8 columns at both calls by hand, not at the first."""
    model, ids, mask = _albert()
    effects = unit_effects(model, ids, HEADS, num_heads=4, target=1, additional_forward_args={"attention_mask": mask})
    calls = []

    def zero_head_1(module, args, every=True):
        calls.append(1)
        if every or len(calls) == 1:
            x = args[0].clone()
            x[..., 8:16] = 0
            return (x,)
        return None

    dense = model.get_submodule(f"{LAYER}.attention.dense")
    clean = _logit(model, ids, mask)
    handle = dense.register_forward_pre_hook(zero_head_1)
    every = clean - _logit(model, ids, mask)
    handle.remove()
    assert len(calls) == 2  # the shared layer ran twice
    handle = dense.register_forward_pre_hook(lambda m, a: zero_head_1(m, a, every=False))
    calls.clear()
    first = clean - _logit(model, ids, mask)
    handle.remove()
    torch.testing.assert_close(effects[:, 1], every, atol=1e-12, rtol=0)
    assert (effects[:, 1] - first).abs().max() > 1e-6  # the first call alone is another answer


def test_a_token_effect_on_albert_equals_replacing_the_token():
    model, ids, mask = _albert()
    effects = input_effects(model, ids, baseline=4, target=1, additional_forward_args={"attention_mask": mask})
    replaced = ids.clone()
    replaced[:, 3] = 4
    torch.testing.assert_close(effects[:, 3], _logit(model, ids, mask) - _logit(model, replaced, mask), atol=1e-12, rtol=0)
    assert (effects[1, 6:] == 0).all()  # padding: not run


def test_a_causal_graph_over_the_shared_layer_is_refused_naming_its_calls_and_nothing_else():
    """The refusal was preceded by capture's warning for each layer ("runs more than once per forward pass; capture
    keeps its last call's output"), which says less than the error and suggests the graph went on."""
    model, ids, mask = _albert()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match=r"ran more than once .*2 times"):
            causal_graph(model, ids, [HEADS, f"{LAYER}.ffn"], num_heads={HEADS: 4}, unit_dim={f"{LAYER}.ffn": -1},
                         additional_forward_args={"attention_mask": mask})
    assert not [str(w.message) for w in caught if "capture keeps" in str(w.message)]


def test_position_embeddings_left_out_of_the_default_map_are_named_a_broadcast_output():
    """ALBERT's default layer map (no chain of blocks: the leaves) met `embeddings.position_embeddings`, whose output
    [1, T, D] is computed from position_ids [1, T] and broadcast over the batch. It was left out with 'A layer built
    with batch_first=False ... returns [T, N, ...]' and meta['left_out'] said '[T, N, ...], or an expert of a
    mixture': neither is what it is."""
    model, ids, mask = _albert()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lm = layer_causal_map(model, ids, baseline=4, additional_forward_args={"attention_mask": mask})
    why = lm.meta["left_out"]["albert.embeddings.position_embeddings"]
    assert "broadcast over the batch" in why and "[T, N, ...]" not in why
    (note,) = [str(w.message) for w in caught if "do not hold the samples on dimension 0" in str(w.message)]
    assert "returned [1, 8, 16] for 3 samples: one row for all samples" in note
    assert "batch_first" not in note


def test_a_named_broadcast_layer_is_refused_without_the_batch_first_advice():
    model, ids, mask = _albert()
    with pytest.raises(ValueError, match=r"returned \[1, 8, 16\] for 3 samples: one row for all samples") as err:
        layer_causal_map(model, ids, layers=["albert.embeddings.position_embeddings"], baseline=4,
                         additional_forward_args={"attention_mask": mask})
    assert "batch_first" not in str(err.value)


@pytest.mark.parametrize("given", [4, 0.0, torch.tensor(4)])
def test_a_baseline_given_where_layers_stands_is_refused_naming_layers(given):
    """input_effects(model, ids, mask, 4) takes the baseline fourth; layer_causal_map(model, ids, mask, 4) took it for
    `layers` and failed with "TypeError: 'int' object is not iterable" (a tensor: an error about module names)."""
    model, ids, mask = _albert()
    with pytest.raises(TypeError, match=r"argument `layers` \(the fourth positional argument\).*baseline="):
        layer_causal_map(model, ids, None, given, additional_forward_args={"attention_mask": mask})
