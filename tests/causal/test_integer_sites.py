"""Unit effects at integer sites (token ids, category codes): the trial passes of the prefix cache
moved the site's value by ``1 - 0.5 h``, turning ids into floats that the embedding refused."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import SetTo, Zero, unit_effects
from lightning_causal.causal.engine.live_values import moved
from tests.helpers.text import MASK, tiny_bert_classifier, token_batch


class Codes(nn.Module):
    """Two category codes, each looked up in an embedding: the codes pass an nn.Identity first."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.codes, self.emb, self.head = nn.Identity(), nn.Embedding(7, 2), nn.Linear(4, 3)

    def forward(self, codes):
        return self.head(self.emb(self.codes(codes)).flatten(1))


def _brute(model, ids, value, target, **kwargs):
    """out(ids) - out(ids with column j set to value) (the effect of keeping the unit), target class, per unit."""
    with torch.no_grad():
        base = model(ids, **kwargs)
        base = (base.logits if hasattr(base, "logits") else base)[torch.arange(len(ids)), target]
        cols = []
        for j in range(ids.shape[1]):
            edited = ids.clone()
            edited[:, j] = value
            out = model(edited, **kwargs)
            cols.append(base - (out.logits if hasattr(out, "logits") else out)[torch.arange(len(ids)), target])
    return torch.stack(cols, 1)


@pytest.mark.parametrize("use_suffix", [True, False])
def test_category_codes_at_an_identity_site(use_suffix):
    model = Codes().double().eval()
    codes = torch.tensor([[3, 1], [2, 0], [6, 5]])
    target = torch.tensor([0, 1, 2])
    got, info = unit_effects(model, codes, "codes", target=target, use_suffix=use_suffix, return_info=True)
    assert torch.allclose(got, _brute(model, codes, 0, target), atol=1e-10)
    assert info.path == ("full" if not use_suffix else info.path)
    fives = unit_effects(model, codes, "codes", intervention=SetTo(5), target=target, use_suffix=use_suffix)
    assert torch.allclose(fives, _brute(model, codes, 5, target), atol=1e-10)


def test_token_ids_at_the_word_embeddings_input_with_the_read_cut():
    """Eight positions per sample: the hook path also looks for the read-position cut, whose check
    moves the cut's value (now to other observed ids, not noise)."""
    model = tiny_bert_classifier()
    ids, mask = token_batch(n=5, length=8)
    target = torch.tensor([0, 1, 0, 1, 1])
    for intervention, value in ((Zero(), 0), (SetTo(MASK), MASK)):
        got, info = unit_effects(model, ids, "bert.embeddings.word_embeddings:input", intervention=intervention, target=target,
                                 additional_forward_args={"attention_mask": mask}, return_info=True)
        assert info.path == "hooks" and info.read_positions  # the cut was checked with moved ids, and taken
        assert torch.allclose(got, _brute(model, ids, value, target, attention_mask=mask), atol=1e-10)


def test_moved_integers_stay_observed_values():
    ids = torch.tensor([[3, 1], [2, 0]])
    out = moved(ids[1:], ids)
    assert out.dtype == ids.dtype and torch.equal(out, torch.tensor([[0, 3]]))
    assert torch.equal(moved(torch.tensor([True, False])), torch.tensor([False, True]))
    assert torch.allclose(moved(torch.tensor([2.0])), torch.tensor([0.0]))


def test_a_causal_graph_from_category_codes():
    """The graph's default ablation, the probe mean, failed on ids with 'mean(): could not infer
    output dtype'; it is now refused by name, and with ablation='zero' the code nodes' effects are
    unit_effects' at that site."""
    from lightning_causal.causal import causal_graph

    model = Codes().double().eval()
    codes = torch.tensor([[3, 1], [2, 0], [6, 5], [4, 4]])
    with pytest.raises(ValueError, match=r"`ablation`.*'codes'.*integers.*got 'mean'"):
        causal_graph(model, codes, ["codes", "head"], target=0)
    with pytest.raises(ValueError, match=r"`baseline`.*'codes'.*got 2.5.*fraction"):
        causal_graph(model, codes, ["codes", "head"], target=0, baseline=2.5, ablation="zero")
    graph = causal_graph(model, codes, ["codes", "head"], target=0, ablation="zero", alpha=1.0, min_share=0.0)
    expected = unit_effects(model, codes, "codes", target=0).mean(0)
    for u in (0, 1):
        assert graph.node_stats[f"codes:{u}"]["effect"] == pytest.approx(float(expected[u]), abs=1e-9)
