"""LayerMapAudit over the blocks of a BERT on token ids: response profiles of [N, T, D] block
outputs and their CKA against a brute-force loop, the attention mask passed through."""

from __future__ import annotations

import pytest
import torch

from lightning_causal.audits.base import Probe
from lightning_causal.audits.input_effects import InputEffectAudit
from lightning_causal.audits.layer_map import LayerMapAudit
from lightning_causal.causal.structure.layer_map import linear_cka
from tests.helpers.models import all_hook_counts
from tests.helpers.text import MASK, tiny_bert_classifier, token_batch

BLOCKS = ["bert.encoder.layer.0", "bert.encoder.layer.1"]


def _blocks(model, ids, att):
    out = {}
    handles = [model.get_submodule(b).register_forward_hook(lambda _m, _i, o, b=b: out.__setitem__(b, o[0] if isinstance(o, tuple) else o))
               for b in BLOCKS]
    try:
        with torch.no_grad():
            logits = model(ids, attention_mask=att).logits
    finally:
        for h in handles:
            h.remove()
    return {b: v * att[..., None].to(v.dtype) for b, v in out.items()}, logits  # the map reads the real positions only


def test_layer_map_over_blocks_equals_brute_force_profiles():
    model = tiny_bert_classifier(seed=4, classes=3)
    ids, att = token_batch(4, 6, seed=6)
    r = LayerMapAudit(layers=BLOCKS, baseline=MASK, max_rows=None).run(model, Probe(ids, additional_forward_args={"attention_mask": att}))
    clean, logits = _blocks(model, ids, att)
    t = logits.argmax(1)
    profiles = {b: [] for b in BLOCKS}
    logit_delta = []
    for g in range(6):  # group-major rows, as the engine enumerates them
        for i in range(4):
            if att[i, g] == 0:  # a padded position keeps its token: not a row of the map
                continue
            changed = ids[i : i + 1].clone()
            changed[0, g] = MASK
            acts, out = _blocks(model, changed, att[i : i + 1])
            for b in BLOCKS:
                profiles[b].append((clean[b][i] - acts[b][0]).flatten())
            logit_delta.append(float((logits[i, t[i]] - out[0, t[i]]).abs()))
    p0, p1 = (torch.stack(profiles[b]) for b in BLOCKS)
    cka = r.graphs["layer_map"]["cka"]
    assert cka[0][1] == pytest.approx(linear_cka(p0, p1), abs=1e-6)  # profiles enter the CKA in float32
    for k, (b, p) in enumerate(zip(BLOCKS, (p0, p1))):
        want = p.norm(dim=1).mean() / clean[b].flatten(1).norm(dim=1).mean()
        assert float(r.vectors["layer_response"][k]) == pytest.approx(float(want), rel=1e-6)  # a float32 vector
    f_t = logits.gather(1, t.view(-1, 1)).abs().mean()
    assert r.scalars["output_response"] == pytest.approx(sum(logit_delta) / len(logit_delta) / float(f_t), rel=1e-9)
    assert r.scalars["n_layers"] == 2.0 and 1.0 <= r.scalars["n_nodes"] <= 2.0
    assert all_hook_counts(model) == 0


def test_input_effect_audit_ranks_tokens_and_takes_an_input_layer():
    model = tiny_bert_classifier(seed=4, classes=3)
    ids, att = token_batch(6, 8, seed=8)
    probe = Probe(ids, additional_forward_args={"attention_mask": att})
    r = InputEffectAudit(baseline=MASK, top_k=3).run(model, probe)
    layer = InputEffectAudit(baseline=MASK, top_k=3, input_layer="bert.embeddings.word_embeddings").run(model, probe)
    torch.testing.assert_close(layer.maps["effect"], r.maps["effect"], atol=1e-12, rtol=0)
    effect, keep = r.maps["effect"].abs(), att == 1
    for row in r.tables["top_tokens"]:  # mean |δ| over the token's unpadded occurrences
        where = (ids == row["token"]) & keep
        assert row["count"] == int(where.sum()) and row["mean_abs_effect"] == pytest.approx(float(effect[where].mean()))
    means = [row["mean_abs_effect"] for row in r.tables["top_tokens"]]
    assert means == sorted(means, reverse=True) and len(means) == 3
    with pytest.raises(ValueError, match="Unknown module name"):
        InputEffectAudit(baseline=MASK, input_layer="bert.nope").validate(model, probe)


def test_vocabulary_names_the_top_tokens_and_reaches_the_token_strips():
    from lightning_causal.audits.captum_baseline import CaptumBaseline
    from lightning_causal.reporting.figure_kinds import MapData, token_maps

    model = tiny_bert_classifier(seed=4, classes=3)
    ids, att = token_batch(4, 6, seed=8)
    probe = Probe(ids, additional_forward_args={"attention_mask": att})
    words = [f"w{i}" for i in range(int(ids.max()) + 1)]
    r = InputEffectAudit(baseline=MASK, top_k=3, vocabulary=words).run(model, probe)
    plain = InputEffectAudit(baseline=MASK, top_k=3).run(model, probe)
    assert [row["word"] for row in r.tables["top_tokens"]] == [words[row["token"]] for row in plain.tables["top_tokens"]]
    assert "word" not in plain.tables["top_tokens"][0] and "vocabulary" not in plain.meta
    assert r.meta["vocabulary"] == {str(t): words[t] for t in sorted(set(ids.flatten().tolist()))}  # the probe's words only
    c = CaptumBaseline(("LayerGradientXActivation",), baseline=MASK, input_layer="bert.embeddings.word_embeddings",
                       vocabulary=words).run(model, probe)
    assert c.meta["vocabulary"] == r.meta["vocabulary"]
    (_, fig), *_ = token_maps(MapData(inputs=ids, maps={"effect": r.maps["effect"]}, audit="tokens", meta=r.meta))
    drawn = [t.get_text() for t in fig.axes[0].texts]
    assert drawn == [words[t] for t in ids[0].tolist()]  # every token of sample 0 by its word, in order
    with pytest.raises(TypeError, match="vocabulary"):
        InputEffectAudit(vocabulary="abc")


def test_group_effects_average_over_the_samples_where_the_position_is_not_padding():
    # they averaged over every sample, the padded ones adding zeros: position 5, padding in 2 of 4
    # sentences, had an output effect of 0.0010 where its 2 real rows give 0.0019
    from lightning_causal.causal.structure.layer_map import layer_causal_map

    model = tiny_bert_classifier(seed=4, classes=3)
    ids, att = token_batch(4, 6, seed=6)
    lm = layer_causal_map(model, ids, None, BLOCKS, baseline=MASK, additional_forward_args={"attention_mask": att}, max_rows=None)
    clean, logits = _blocks(model, ids, att)
    t = logits.argmax(1)
    want = {"<output>": [], BLOCKS[0]: []}
    for g in range(6):
        rows = {k: [] for k in want}
        for i in range(4):
            if att[i, g] == 0:
                continue
            changed = ids[i : i + 1].clone()
            changed[0, g] = MASK
            acts, out = _blocks(model, changed, att[i : i + 1])
            rows["<output>"].append(float((logits[i, t[i]] - out[0, t[i]]).abs()))
            rows[BLOCKS[0]].append(float((clean[BLOCKS[0]][i] - acts[BLOCKS[0]][0]).norm()))
        for k in want:
            want[k].append(sum(rows[k]) / len(rows[k]))
    assert int((att[:, 5] == 0).sum()) == 2
    node = next(k for k, v in lm.nodes.items() if v and v[0] == BLOCKS[0])
    torch.testing.assert_close(lm.group_effects["<output>"], torch.tensor(want["<output>"], dtype=torch.float64), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(lm.group_effects[node], torch.tensor(want[BLOCKS[0]], dtype=torch.float64), rtol=1e-5, atol=1e-9)


def test_layer_map_audit_takes_per_sample_word_groups_from_a_function_of_the_ids():
    """As InputEffectAudit and CaptumBaseline: word pieces grouped into words per sentence; the rows
    of the map are the (word, sentence) pairs where the sentence has a real word (brute force)."""
    model = tiny_bert_classifier(seed=4, classes=3)
    ids, att = token_batch(4, 6, seed=6)
    ids[ids >= 40] = 40  # continuation pieces join the previous word

    def words(x):
        return (x != 40).long().cumsum(1) - 1

    w = words(ids)
    assert (w != torch.arange(6)).any()
    r = LayerMapAudit(words, layers=BLOCKS, baseline=MASK, max_rows=None).run(model, Probe(ids, additional_forward_args={"attention_mask": att}))
    clean, logits = _blocks(model, ids, att)
    t = logits.argmax(1)
    norms, logit_delta = {b: [] for b in BLOCKS}, []
    for g in range(int(w.max()) + 1):
        for i in range(4):
            sel = (w[i] == g) & (att[i] == 1)
            if not sel.any():  # the sentence has no real word g: not a row
                continue
            changed = ids[i : i + 1].clone()
            changed[0, sel] = MASK
            acts, out = _blocks(model, changed, att[i : i + 1])
            for b in BLOCKS:
                norms[b].append(float((clean[b][i] - acts[b][0]).norm()))
            logit_delta.append(float((logits[i, t[i]] - out[0, t[i]]).abs()))
    for k, b in enumerate(BLOCKS):
        want = sum(norms[b]) / len(norms[b]) / float(clean[b].flatten(1).norm(dim=1).mean())
        assert float(r.vectors["layer_response"][k]) == pytest.approx(want, rel=1e-5)
    f_t = float(logits.gather(1, t.view(-1, 1)).abs().mean())
    assert r.scalars["output_response"] == pytest.approx(sum(logit_delta) / len(logit_delta) / f_t, rel=1e-9)
    with pytest.raises(ValueError, match="pass a function of the probe's inputs"):
        LayerMapAudit(w, layers=BLOCKS, baseline=MASK).run(model, Probe(ids, additional_forward_args={"attention_mask": att}))
