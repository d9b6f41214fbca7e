"""A CLIP-like two-tower model returns its batch's image-text similarity matrix [B, B]; an `output=` that reads it
across its columns (a retrieval softmax, an InfoNCE term) makes a sample's value depend on the other samples'
captions. The refusals name that matrix and the ways out (newuser66's trial: /tmp/newuser66/b3.py), which give the
hand loop's effects."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.causal import input_effects, unit_effects
from lightning_causal.causal.engine.forward_args import mark_whole


class TwoTower(nn.Module):
    """forward(pixels, input_ids, attention_mask) -> the batch's similarity matrix [B, B] (or a mapping of it)."""

    def __init__(self, mapping=False):
        super().__init__()
        self.image = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 6))
        self.embed = nn.Embedding(7, 6)
        self.mapping = mapping

    def forward(self, pixels, input_ids, attention_mask):
        m = attention_mask[..., None].float()
        text = F.normalize((self.embed(input_ids) * m).sum(1) / m.sum(1), dim=-1)
        s = 5.0 * F.normalize(self.image(pixels), dim=-1) @ text.T
        return {"logits_per_image": s, "logits_per_text": s.T} if self.mapping else s


def batch(n=6):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, 4, 4, generator=g)
    ids = torch.randint(1, 7, (n, 3), generator=g)
    mask = torch.ones(n, 3, dtype=torch.long)
    mask[::2, 2] = 0
    return x, ids, mask


def model(mapping=False):
    torch.manual_seed(0)
    return TwoTower(mapping).eval()


def hand(f, x, groups):
    """f(x) - f(x with group g set to 0), one group at a time."""
    with torch.no_grad():
        return torch.stack([f(x) - f(torch.where(groups == g, torch.zeros(()), x)) for g in range(int(groups.max()) + 1)], 1)


GROUPS = torch.arange(4).repeat_interleave(4).view(1, 4, 4)  # a group per image row


@pytest.mark.parametrize("output", [
    lambda s: s.diagonal()[:, None] - s.logsumexp(1, keepdim=True),  # InfoNCE's image->text term
    lambda s: s.softmax(1).diagonal()[:, None],  # retrieval probability of the own caption among the batch's
    lambda s: s.mean(1, keepdim=True),
])
def test_output_across_the_matrix_is_named(output):
    x, ids, mask = batch()
    with pytest.raises(ValueError) as err:
        input_effects(model(), x, GROUPS, output=output, additional_forward_args=(ids, mask))
    text = str(err.value)
    assert "in-batch score matrix (the output is [6, 6] for the batch of 6 and [2, 2] for 2 samples alone" in text
    assert "output=lambda s: s.diagonal()[:, None]" in text and "mark_whole((input_ids, attention_mask), [0, 1])" in text
    assert "support_y" not in text  # not a support set gathered by row


def test_mapping_output_named_by_key_for_unit_effects():
    x, ids, mask = batch()
    with pytest.raises(ValueError, match="in-batch score matrix \\('logits_per_image' is \\[6, 6\\]"):
        unit_effects(model(True), x, "image.1", unit_dim=-1, output=lambda o: o["logits_per_image"].log_softmax(1)[:, :1],
                     additional_forward_args=(ids, mask))


def test_diagonal_of_candidates_passed_whole_is_named():
    x, ids, mask = batch()
    with pytest.raises(ValueError) as err:
        input_effects(model(), x, GROUPS, output=lambda s: s.diagonal()[:, None],
                      additional_forward_args=mark_whole((ids, mask), [0, 1]))
    assert "`s.diagonal()` pairs row i with candidate i" in str(err.value)
    assert "target=torch.arange(N)" in str(err.value)


def test_ways_out_equal_a_hand_loop():
    x, ids, mask = batch()
    m = model()
    own = input_effects(m, x, GROUPS, output=lambda s: s.diagonal()[:, None], additional_forward_args=(ids, mask))
    torch.testing.assert_close(own, hand(lambda v: m(v, ids, mask).diagonal(), x, GROUPS), atol=1e-5, rtol=0)
    among = input_effects(m, x, GROUPS, output=lambda s: s.log_softmax(1), target=torch.arange(6),
                          additional_forward_args=mark_whole((ids, mask), [0, 1]))
    expected = hand(lambda v: m(v, ids, mask).log_softmax(1).diagonal(), x, GROUPS)  # every image against all 6 captions
    torch.testing.assert_close(among, expected, atol=1e-5, rtol=0)


class ZeroShot(nn.Module):
    """logits = scale * cos(image, class prompt): the text tower runs on the 5 prompts kept as a buffer."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.image = nn.Sequential(nn.Flatten(), nn.Linear(16, 6))
        self.embed = nn.Embedding(7, 6)
        self.text = nn.Linear(6, 6)
        self.register_buffer("prompts", torch.tensor([[1, 2], [1, 3], [1, 4], [1, 5], [1, 6]]))

    def forward(self, pixels):
        prompts = F.normalize(self.text(self.embed(self.prompts).mean(1)), dim=-1)
        return 5.0 * F.normalize(self.image(pixels), dim=-1) @ prompts.T


@pytest.mark.parametrize("samples", [3, 8])
def test_text_tower_over_prompts_is_measured_in_every_shared_row(samples):
    """Refused (named as shared) until leftovers_s34a; each unit is now set in every prompt's row, as `intervene` does
    on the whole probe (tests/causal/test_leftovers_s34a_shared_units.py for the float64 hand loop)."""
    from lightning_causal.causal.engine.interventions import Zero, intervene

    x, m = batch(samples)[0], ZeroShot().eval()
    effects, info = unit_effects(m, x, "text", unit_dim=-1, target=0, return_info=True)
    with torch.no_grad():
        clean = m(x)[:, 0]
        by_hand = []
        for u in range(6):
            with intervene(m, {"text": Zero(units=[u], unit_dim=-1)}):
                by_hand.append(clean - m(x)[:, 0])
    torch.testing.assert_close(effects, torch.stack(by_hand, 1), atol=1e-6, rtol=0)
    assert info.path == "shared" and "5 row(s) every sample shares" in info.reason


def test_layer_map_names_prompt_rows_it_leaves_out():
    from lightning_causal.causal import layer_causal_map

    with pytest.warns(UserWarning, match="zero-shot classifier's text tower over its class prompts") as seen:
        result = layer_causal_map(ZeroShot().eval(), batch(8)[0], GROUPS)
    said = next(str(w.message) for w in seen if "leaves out" in str(w.message))
    assert "'text' returned [5, 6] for 8 samples" in said
    assert "zero-shot classifier's class prompts" in result.meta["left_out"]["text"]


def test_no_candidates_hint_without_arguments_passed_whole():
    from lightning_causal.causal.engine.forward import Forward
    from lightning_causal.causal.engine.in_batch_scores import place_paired_hint

    x, ids, mask = batch()
    rows = Forward(model(), output=lambda s: s.diagonal()[:, None], additional_forward_args=(ids, mask), num_samples=6)
    assert place_paired_hint(rows, (x,)) == ""  # the captions follow their rows: no candidates passed whole
    whole = Forward(model(), output=lambda s: s.diagonal()[:, None], num_samples=6,
                    additional_forward_args=mark_whole((ids, mask), [0, 1]))
    assert "pairs row i with candidate i" in place_paired_hint(whole, (x,))
