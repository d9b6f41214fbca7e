"""Mean ablations of padded text probes count real positions only: the causal graph's ``"mean"``
values (its default ``ablation`` and ``baseline="mean"``) and :class:`MeanOf` with a reference's
``attention_mask``. The hidden state of a padded position is never read by the output but moves
with the real tokens and with the pad id there; averaged in, it made the graph's circuit values
depend on what the padding holds (a tiny BERT's faithfulness -11.03 with pad id 0, -4.68 with pad
id 5, identical logits) and MeanOf's value on how far the reference was padded."""

from __future__ import annotations

import pytest
import torch

from lightning_causal.causal import MeanOf, causal_graph, graph_faithfulness, unit_effects
from lightning_causal.causal.engine.units import Layout, to_units
from lightning_causal.causal.structure.graph_context import layer_values
from tests.helpers.text import PAD, tiny_bert_classifier, token_batch

transformers = pytest.importorskip("transformers")

BERT_LAYER = "bert.encoder.layer.0.output"
GPT_LAYER = "transformer.h.0.mlp"


def _masked_mean(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Hand-written: at each position the mean over the samples whose position is real, [T, D]; a
    position no sample has real: the mean of all real tokens."""
    tokens = [h[n, t] for n in range(h.shape[0]) for t in range(h.shape[1]) if mask[n, t]]
    out = torch.zeros(h.shape[1:], dtype=h.dtype)
    for t in range(h.shape[1]):
        rows = [h[n, t] for n in range(h.shape[0]) if mask[n, t]] or tokens
        out[t] = sum(rows) / len(rows)
    return out


def _capture(model, name, *args, **kwargs):
    seen = {}
    handle = dict(model.named_modules())[name].register_forward_hook(lambda _m, _i, o: seen.__setitem__("h", o))
    try:
        with torch.no_grad():
            model(*args, **kwargs)
    finally:
        handle.remove()
    return seen["h"]


def _empty_logit(model, name, value, ids, mask, read):
    """Mean target logit 0 with ``name``'s output set to ``value`` at every position (a hook loop)."""
    handle = dict(model.named_modules())[name].register_forward_hook(lambda _m, _i, o: value.expand_as(o).clone())
    try:
        with torch.no_grad():
            return float(read(model(ids, attention_mask=mask))[:, 0].mean())
    finally:
        handle.remove()


def _bert_probe(extra: int = 0, pad_id: int = PAD):
    ids, mask = token_batch(6, 8)
    ids = torch.cat([ids, torch.full((6, extra), PAD)], 1)
    mask = torch.cat([mask, torch.zeros(6, extra, dtype=mask.dtype)], 1)
    return torch.where(mask == 0, torch.tensor(pad_id), ids), mask


def _graph(model, ids, mask, layers, **options):
    return causal_graph(model, ids, layers, top_k=3, target=0, alpha=1.0, unit_dim=-1,
                        additional_forward_args={"attention_mask": mask}, **options)


def test_the_empty_circuit_of_a_padded_bert_equals_a_hook_loop_with_the_masked_mean():
    model = tiny_bert_classifier()
    ids, mask = _bert_probe()
    g = _graph(model, ids, mask, [BERT_LAYER])
    m = _masked_mean(_capture(model, BERT_LAYER, ids, attention_mask=mask), mask)
    expected = _empty_logit(model, BERT_LAYER, m, ids, mask, lambda out: out.logits)
    assert g.meta["logit_empty"] == pytest.approx(expected, abs=1e-12, rel=1e-10)


def test_pad_ids_and_more_pad_columns_change_no_number_of_the_graph():
    model = tiny_bert_classifier()
    layers = ["bert.encoder.layer.0.attention.output", "bert.encoder.layer.1.output"]
    graphs = [_graph(model, *_bert_probe(extra, pad_id), layers, baseline="mean") for extra, pad_id in ((0, PAD), (4, PAD), (0, 5))]
    first = graphs[0]
    for other in graphs[1:]:
        for key in ("faithfulness", "logit_empty", "logit_graph"):
            assert other.meta[key] == pytest.approx(first.meta[key], abs=1e-10, rel=1e-9), key
        assert other.nodes == first.nodes
        for node, stats in first.node_stats.items():
            for key, value in stats.items():
                assert other.node_stats[node][key] == pytest.approx(value, abs=1e-10, rel=1e-9), (node, key)


def test_graph_faithfulness_reads_the_same_padding():
    model = tiny_bert_classifier()
    ids, mask = _bert_probe(pad_id=5)
    g = _graph(model, ids, mask, [BERT_LAYER])
    again = graph_faithfulness(model, ids, g, target=0, additional_forward_args={"attention_mask": mask})
    assert again["logit_empty"] == pytest.approx(g.meta["logit_empty"], abs=1e-12, rel=1e-10)


def _gpt2():
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=30, n_embd=16, n_layer=2, n_head=2, n_positions=16, pad_token_id=0, num_labels=2)
    return transformers.GPT2ForSequenceClassification(config).double().eval()


def _right_padded(length: int = 8):
    g = torch.Generator().manual_seed(0)
    ids, mask = torch.zeros(5, length, dtype=torch.long), torch.zeros(5, length, dtype=torch.long)
    for i, n in enumerate([7, 4, 6, 3, 5]):
        ids[i, :n], mask[i, :n] = torch.randint(2, 30, (n,), generator=g), 1
    return ids, mask


def test_the_empty_circuit_of_a_right_padded_gpt2_equals_a_hook_loop_with_the_masked_mean():
    model = _gpt2()
    ids, mask = _right_padded()
    g = _graph(model, ids, mask, [GPT_LAYER])
    m = _masked_mean(_capture(model, GPT_LAYER, ids, attention_mask=mask), mask)
    expected = _empty_logit(model, GPT_LAYER, m, ids, mask, lambda out: out.logits)
    assert g.meta["logit_empty"] == pytest.approx(expected, abs=1e-12, rel=1e-10)


def test_layer_values_of_heads_are_the_masked_mean_in_the_units_view():
    h = torch.randn(4, 5, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)  # [N, T, 3 heads of 2]
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 0]])
    layout = Layout(2, 2, 3)
    got = layer_values(to_units(h, layout), "mean", real=mask.bool(), layout=layout)
    torch.testing.assert_close(got, to_units(_masked_mean(h, mask).unsqueeze(0), layout), atol=1e-14, rtol=0)


def test_without_padding_the_mean_is_the_plain_probe_mean():
    """No attention_mask, or one of all ones: the plain mean over the probe, as before."""
    model = tiny_bert_classifier()
    ids, _ = token_batch(6, 8)
    full = torch.ones_like(ids)
    g = causal_graph(model, ids, [BERT_LAYER], top_k=3, target=0, alpha=1.0, unit_dim=-1)
    ones = _graph(model, ids, full, [BERT_LAYER])
    m = _capture(model, BERT_LAYER, ids).mean(0)
    assert g.meta["logit_empty"] == pytest.approx(_empty_logit(model, BERT_LAYER, m, ids, None, lambda o: o.logits), abs=1e-12, rel=1e-10)
    assert ones.meta["logit_empty"] == g.meta["logit_empty"]
    assert ones.meta["faithfulness"] == g.meta["faithfulness"]


def test_layer_values_without_padding_are_the_plain_mean():
    h = torch.randn(3, 4, 2, dtype=torch.float64)
    assert torch.equal(layer_values(h, "mean"), h.mean(0, keepdim=True))
    assert torch.equal(layer_values(h, "mean", real=torch.ones(3, 4, dtype=torch.bool)), h.mean(0, keepdim=True))


def test_a_position_no_sample_has_real_takes_the_mean_of_the_real_tokens():
    h = torch.tensor([[[1.0], [4.0], [9.0]], [[3.0], [99.0], [99.0]]], dtype=torch.float64)
    real = torch.tensor([[True, True, False], [True, False, False]])
    assert layer_values(h, "mean", real=real).flatten().tolist() == pytest.approx([2.0, 4.0, 8.0 / 3.0])


def _mean_of(model, extra, pad_id):
    ids, mask = _bert_probe(extra, pad_id)
    ref = _capture(model, BERT_LAYER, ids, attention_mask=mask)
    return ref, mask, MeanOf(ref, unit_dim=-1, attention_mask=mask)


def test_mean_of_a_padded_reference_of_the_probe_length_is_the_masked_mean_per_position():
    model = tiny_bert_classifier()
    probe, probe_mask = _bert_probe()
    effects = []
    for pad_id in (PAD, 5):
        ref, mask, iv = _mean_of(model, 0, pad_id)
        torch.testing.assert_close(iv.mean, _masked_mean(ref, mask), atol=1e-14, rtol=0)
        effects.append(unit_effects(model, probe, BERT_LAYER, iv, target=0, additional_forward_args={"attention_mask": probe_mask}))
    torch.testing.assert_close(effects[0], effects[1], atol=1e-12, rtol=0)


def test_mean_of_a_reference_of_another_length_is_the_mean_of_its_real_tokens():
    """Padded by 4 or 8 more columns, or with another pad id: the same value, the same effects."""
    model = tiny_bert_classifier()
    probe, probe_mask = _bert_probe()
    effects = []
    for extra, pad_id in ((4, PAD), (8, PAD), (4, 5)):
        ref, mask, iv = _mean_of(model, extra, pad_id)
        tokens = torch.cat([ref[n, mask[n].bool()] for n in range(ref.shape[0])])
        got = iv.values(torch.zeros(1, 8, 32, dtype=torch.float64)).expand(1, 8, 32)
        torch.testing.assert_close(got, tokens.mean(0).expand(1, 8, 32), atol=1e-14, rtol=0)
        effects.append(unit_effects(model, probe, BERT_LAYER, iv, target=0, additional_forward_args={"attention_mask": probe_mask}))
    for other in effects[1:]:
        torch.testing.assert_close(other, effects[0], atol=1e-12, rtol=0)


def test_mean_of_without_a_mask_is_unchanged():
    ref = torch.randn(3, 4, 2, dtype=torch.float64)
    assert torch.equal(MeanOf(ref, unit_dim=-1).mean, ref.mean(0))


def test_mean_of_with_a_mask_of_ones_is_the_plain_mean():
    ref = torch.randn(3, 4, 2, dtype=torch.float64)
    assert torch.equal(MeanOf(ref, unit_dim=-1, attention_mask=torch.ones(3, 4, dtype=torch.long)).mean, ref.mean(0))


@pytest.mark.parametrize(("mask", "match"), [
    (torch.ones(3, 5, dtype=torch.long), r"attention_mask` of shape \[M, T\] = \[3, 4\].*got \[3, 5\]"),
    (torch.full((3, 4), 2), "attention_mask` to hold 0 .* and 1"),
    (torch.zeros(3, 4, dtype=torch.long), "at least one real token"),
])
def test_mean_of_refuses_a_mask_that_does_not_fit(mask, match):
    with pytest.raises(ValueError, match=match):
        MeanOf(torch.randn(3, 4, 2), attention_mask=mask)
    with pytest.raises(TypeError, match="attention_mask"):
        MeanOf(torch.randn(3, 4, 2), attention_mask=[[1, 1, 1, 1]] * 3)
