"""Token inputs of a Hugging Face BERT: effects of token replacement and of interventions on the
embedding layer (``input_layer=``) against brute force, padding, word-piece groups."""

from __future__ import annotations

import pytest
import torch

from lightning_causal.audits import InputEffectAudit
from lightning_causal.audits.base import Probe
from lightning_causal.causal import input_effects
from tests.helpers.models import all_hook_counts
from tests.helpers.text import MASK, PAD, VOCAB, tiny_bert_classifier, token_batch

WORDS = "bert.embeddings.word_embeddings"


@pytest.fixture(scope="module")
def bert():
    return tiny_bert_classifier(seed=0, classes=3)


def _logit(model, ids, att, target):
    with torch.no_grad():
        return model(ids, attention_mask=att).logits.gather(1, target.view(-1, 1)).squeeze(1)


def _brute_force_tokens(model, ids, att, groups, baseline, target):
    """δ_g by hand: one sample and one group at a time, the group's tokens set to ``baseline``."""
    n, g = ids.shape[0], int(groups.max()) + 1
    out = torch.zeros(n, g, dtype=torch.float64)
    for i in range(n):
        m = groups[i if groups.shape[0] > 1 else 0]
        f0 = _logit(model, ids[i : i + 1], att[i : i + 1], target[i : i + 1])
        for grp in range(g):
            changed = ids[i : i + 1].clone()
            changed[0, m == grp] = baseline
            out[i, grp] = f0 - _logit(model, changed, att[i : i + 1], target[i : i + 1])
    return out


def _embedding_patch(model, ids, att, target, position, value):
    """The hand-written patch: word embeddings of sample ``ids`` at ``position`` replaced by ``value``."""
    layer = model.bert.embeddings.word_embeddings

    def hook(_m, _i, out):
        out = out.clone()
        out[:, position] = value
        return out

    handle = layer.register_forward_hook(hook)
    try:
        return _logit(model, ids, att, target)
    finally:
        handle.remove()


@pytest.mark.parametrize("max_batch_size", [None, 5])
def test_token_effects_with_an_attention_mask_equal_brute_force_replacement(bert, max_batch_size):
    ids, att = token_batch(4, 8)
    target = torch.tensor([0, 1, 2, 0])
    got = input_effects(bert, ids, baseline=MASK, target=target, max_batch_size=max_batch_size,
                        additional_forward_args={"attention_mask": att})
    want = _brute_force_tokens(bert, ids, att, torch.arange(8).unsqueeze(0), MASK, target)
    torch.testing.assert_close(got, want, atol=1e-10, rtol=0)
    assert got.abs().max() > 1e-4  # the model is not blind to its tokens


def test_padded_positions_have_exactly_zero_effect(bert):
    ids, att = token_batch(4, 8)
    for layer in (None, WORDS):
        eff = input_effects(bert, ids, baseline=MASK, additional_forward_args={"attention_mask": att}, input_layer=layer)
        assert (att == 0).any() and torch.equal(eff[att == 0], torch.zeros(int((att == 0).sum()), dtype=eff.dtype))
        assert (eff[att == 1] != 0).all()


def test_input_layer_equals_a_hand_written_embedding_patch(bert):
    ids, att = token_batch(3, 7, seed=4)
    target = torch.tensor([2, 0, 1])
    zero = input_effects(bert, ids, target=target, additional_forward_args={"attention_mask": att}, input_layer=WORDS)
    vec = torch.linspace(-1, 1, 32, dtype=torch.float64)
    const = input_effects(bert, ids, None, vec, target=target, additional_forward_args={"attention_mask": att}, input_layer=WORDS)
    token = input_effects(bert, ids, None, MASK, target=target, additional_forward_args={"attention_mask": att}, input_layer=WORDS)
    mask_embedding = bert.bert.embeddings.word_embeddings.weight[MASK].detach()
    for i in range(3):
        s, f0 = slice(i, i + 1), _logit(bert, ids[i : i + 1], att[i : i + 1], target[i : i + 1])
        for p in range(7):
            if att[i, p] == 0:
                continue
            for got, value in ((zero, 0.0), (const, vec), (token, mask_embedding)):
                want = f0 - _embedding_patch(bert, ids[s], att[s], target[s], p, value)
                torch.testing.assert_close(got[i, p], want[0], atol=1e-10, rtol=0)
    # on the word embeddings, the embedding of [MASK] is the same intervention as the token [MASK]
    torch.testing.assert_close(token, input_effects(bert, ids, None, MASK, target=target,
                                                    additional_forward_args={"attention_mask": att}), atol=1e-12, rtol=0)
    assert all_hook_counts(bert) == 0


def test_a_mask_groups_word_pieces_into_words(bert):
    ids, att = token_batch(2, 8, seed=5)
    # per-sample words: [CLS] | w w | w | w w w | [SEP]   and   [CLS] | w | w w | w w | [SEP] [PAD]
    words = torch.tensor([[0, 1, 1, 2, 3, 3, 3, 4], [0, 1, 2, 2, 3, 3, 4, 5]])
    target = torch.tensor([1, 0])
    got = input_effects(bert, ids, words, PAD, target=target, additional_forward_args={"attention_mask": att})
    torch.testing.assert_close(got, _brute_force_tokens(bert, ids, att, words, PAD, target), atol=1e-10, rtol=0)
    layer = input_effects(bert, ids, words, PAD, target=target, additional_forward_args={"attention_mask": att},
                          input_layer=WORDS)
    torch.testing.assert_close(layer, got, atol=1e-12, rtol=0)
    assert got[1, 5] == 0  # the group of the padded position


def test_input_layer_errors_name_the_argument(bert):
    ids, att = token_batch(2, 6)
    with pytest.raises(ValueError, match="`input_layer`.*starts with the input's shape"):
        input_effects(bert, ids, input_layer="classifier", additional_forward_args={"attention_mask": att})
    with pytest.raises(ValueError, match="Unknown module name"):
        input_effects(bert, ids, input_layer="bert.embeddings.words", additional_forward_args={"attention_mask": att})
    with pytest.raises(ValueError, match="one input tensor"):
        input_effects(bert, (ids, ids), input_layer=WORDS)
    with pytest.raises(ValueError, match="`baseline` to be an integer"):
        input_effects(bert, ids, baseline=0.5)
    assert all_hook_counts(bert) == 0


class _ReadsPadding(torch.nn.Module):
    """Ignores its attention mask: the pad tokens reach the output (as GPT-2 pooling by pad id does)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.head = torch.nn.Embedding(10, 4), torch.nn.Linear(4, 2)

    def forward(self, ids, attention_mask=None):
        return self.head(self.emb(ids).sum(1))


def test_a_group_that_reaches_into_padding_replaces_its_real_tokens_only():
    model = _ReadsPadding().double()
    ids, att = torch.tensor([[3, 4, 5, 0]]), torch.tensor([[1, 1, 1, 0]])
    words = torch.tensor([[0, 1, 2, 2]])  # word 2: position 2 and the pad at position 3
    got = input_effects(model, ids, words, 7, target=1, additional_forward_args={"attention_mask": att})
    with torch.no_grad():
        base = model(ids)[0, 1]
        ref = [base - model(ids.index_fill(1, torch.tensor([p]), 7))[0, 1] for p in range(3)]  # the pad stays 0
    torch.testing.assert_close(got[0], torch.stack(ref), atol=1e-12, rtol=0)


class _EmbeddingPerColumn(torch.nn.Module):
    """Three categorical columns, each with its own 3-dimensional embedding: ``embs.0`` returns
    ``[N, 3]`` for codes ``[N, 3]`` though it reads column 0 only."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embs = torch.nn.ModuleList(torch.nn.Embedding(4, 3) for _ in range(3))
        self.head = torch.nn.Linear(9, 2)

    def forward(self, codes):
        return self.head(torch.cat([emb(codes[:, i]) for i, emb in enumerate(self.embs)], 1))


def test_an_input_layer_that_reads_one_column_of_the_input_is_refused():
    """`input_layer="embs.0"` of one embedding per categorical column passed the shape check
    ([N, 3] output for [N, 3] codes) and returned the effects of zeroing the 3 coordinates of
    column 0's embedding as the effects of the 3 columns, silently."""
    model, codes = _EmbeddingPerColumn(), torch.tensor([[0, 1, 2], [3, 2, 1]])
    with pytest.raises(ValueError, match=r"`input_layer`\) to read the whole input \[2, 3\].*shape \[2\]"):
        input_effects(model, codes, input_layer="embs.0")
    assert all_hook_counts(model) == 0


@pytest.mark.parametrize("input_layer", [None, WORDS])
@pytest.mark.parametrize("baseline", [VOCAB, -1, 5000])
def test_a_token_baseline_outside_the_vocabulary_is_refused_naming_it(bert, input_layer, baseline):
    ids, att = token_batch(2, 6)
    with pytest.raises(ValueError, match=rf"`baseline` to be a token id in \[0, {VOCAB}\) .*'{WORDS}'.* got {baseline}$"):
        input_effects(bert, ids, baseline=baseline, input_layer=input_layer, additional_forward_args={"attention_mask": att})
    assert all_hook_counts(bert) == 0


class _PerColumn(torch.nn.Module):
    """Two categorical columns, each with its own embedding (3 and 50 categories)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b, self.head = torch.nn.Embedding(3, 2), torch.nn.Embedding(50, 2), torch.nn.Linear(4, 1)

    def forward(self, x):
        return self.head(torch.cat([self.a(x[:, 0]), self.b(x[:, 1])], 1)).squeeze(-1)


def test_a_per_column_token_baseline_is_checked_against_the_embedding_of_its_column():
    x = torch.tensor([[0, 10], [2, 49], [1, 0]])
    model = _PerColumn()
    got = input_effects(model, x, baseline=torch.tensor([0, 40]))  # in range for each column's own embedding
    with torch.no_grad():
        ref = torch.stack([model(x) - model(torch.stack([torch.zeros(3, dtype=torch.long), x[:, 1]], 1)),
                           model(x) - model(torch.stack([x[:, 0], torch.full((3,), 40)], 1))], 1)
    torch.testing.assert_close(got, ref)
    with pytest.raises(ValueError, match=r"`baseline` to be a token id in \[0, 3\) .*'a'.* got 5$"):
        input_effects(model, x, baseline=torch.tensor([5, 40]))


class _Shifted(torch.nn.Module):
    """Looks up ``ids + 1``: the vocabulary bound of the ids is not the embedding's size."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.head = torch.nn.Embedding(10, 4), torch.nn.Linear(4, 2)

    def forward(self, ids):
        return self.head(self.emb(ids + 1).sum(1))


def test_a_token_baseline_the_model_cannot_look_up_after_shifting_is_named():
    ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
    assert input_effects(_Shifted(), ids, baseline=-1).shape == (2, 3)  # looks up 0: allowed
    with pytest.raises(ValueError, match="`baseline` to hold token ids the model can look up .* got 9: .*IndexError"):
        input_effects(_Shifted(), ids, baseline=9)


def test_a_positional_attention_mask_is_padding_as_the_keyword_is(bert):
    ids, att = token_batch(4, 8)  # BertForSequenceClassification.forward(input_ids, attention_mask, ...)
    kw = input_effects(bert, ids, baseline=MASK, additional_forward_args={"attention_mask": att})
    assert torch.equal(input_effects(bert, ids, baseline=MASK, additional_forward_args=(att,)), kw)
    audit = InputEffectAudit(baseline=MASK)
    pos = audit.run(bert, Probe(ids, additional_forward_args=(att,))).scalars
    assert pos == audit.run(bert, Probe(ids, additional_forward_args={"attention_mask": att})).scalars  # was 0.00405 vs 0.00447


class _TwoInputs(torch.nn.Module):
    """Two token inputs, each with its own embedding (3 and 50 ids)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b, self.head = torch.nn.Embedding(3, 2), torch.nn.Embedding(50, 2), torch.nn.Linear(4, 1)

    def forward(self, u, v):
        return self.head(torch.cat([self.a(u).mean(1), self.b(v).mean(1)], 1)).squeeze(-1)


def test_token_baselines_of_two_inputs_that_share_one_tensor_are_checked_per_input():
    ids = torch.tensor([[0, 1, 10, 20], [2, 2, 30, 49], [1, 0, 0, 5]])
    u, v = ids[:, :2], ids[:, 2:]  # views of one storage: each embedding reads its own part
    got = input_effects(_TwoInputs(), (u, v), baseline=(2, 40))  # valid for each input's embedding
    with torch.no_grad():
        m = _TwoInputs()
        ref = torch.stack([m(u, v) - m(torch.where(torch.arange(2) == i, 2, u), v) for i in range(2)]
                          + [m(u, v) - m(u, torch.where(torch.arange(2) == i, 40, v)) for i in range(2)], 1)
    torch.testing.assert_close(got, ref)
    with pytest.raises(ValueError, match=r"`baseline` \(input 0\) to be a token id in \[0, 3\) .*'a'.* got 4$"):
        input_effects(_TwoInputs(), (u, v), baseline=(4, 40))
