"""`topk_jaccard` among tied magnitudes: `torch.topk` picked among equal values in an order of its own, so
dead units (importance 0) entered the top sets and the overlap was an artefact of that order."""

import torch

from lightning_causal.audits.drift import topk_jaccard, vector_drift


def test_dead_units_are_in_no_top_set():
    a = torch.tensor([5.0, 3.0, 0.0, 0.0, 0.0, 0.0])
    # the two units with an effect moved to two other units: nothing of the top is shared
    assert topk_jaccard(a, a.flip(0), 5) == 0.0
    assert topk_jaccard(a, a.clone(), 5) == 1.0
    # one living unit kept its place, the other moved: {0, 1} against {0, 4}
    assert topk_jaccard(a, torch.tensor([5.0, 0.0, 0.0, 0.0, 3.0, 0.0]), 5) == 1 / 3


def test_ties_at_the_kth_value_are_kept_whole_in_either_order():
    a = torch.tensor([4.0, 2.0, 2.0, 2.0, 1.0])
    b = torch.tensor([4.0, 1.0, 2.0, 2.0, 2.0])
    # k = 2: a's top set is {0, 1, 2, 3} (three units tie at the 2nd value), b's {0, 2, 3, 4}: 3 of 5
    assert topk_jaccard(a, b, 2) == 3 / 5
    assert topk_jaccard(b, a, 2) == 3 / 5
    # the answer does not depend on where the tied entries sit
    perm = torch.tensor([3, 1, 0, 4, 2])
    assert topk_jaccard(a[perm], b[perm], 2) == 3 / 5


def test_signed_vectors_rank_by_magnitude_and_two_dead_vectors_agree():
    assert topk_jaccard(torch.tensor([-3.0, 1.0, 0.5]), torch.tensor([3.0, 0.5, 1.0]), 1) == 1.0
    z = torch.zeros(4)
    assert topk_jaccard(z, z, 2) == 1.0


def test_vector_drift_of_a_layer_with_dead_filters():
    prev = {"filters": torch.tensor([0.9, 0.4, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])}
    cur = {"filters": torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.4, 0.9])}
    assert vector_drift(prev, cur)["drift/filters/topk_jaccard"] == 0.0
