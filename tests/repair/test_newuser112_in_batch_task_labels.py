"""CausalRepairModule around a CLIP-like model whose explained output is the batch's similarity matrix [B, B]
(`output="logits_per_image"`), given the samples' classes as labels (newuser112's trial: /tmp/newuser112/t12.py),
trained cross_entropy(s, y) without an error: image i pushed towards caption y_i of its batch. It is refused at the
first batch, naming the matrix and the ways out; InfoNCE's labels arange(B) and a classifier whose classes equal the
batch's rows by chance train as before."""

import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_causal import CausalRepairModule, CounterfactualFairnessTerm
from lightning_causal.causal import AttributeFlip


class Towers(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.image, self.text = nn.Linear(4, 6), nn.Linear(5, 6)

    def forward(self, a, b):
        s = F.normalize(self.image(a), dim=-1) @ F.normalize(self.text(b), dim=-1).T
        return {"logits_per_image": s, "logits_per_text": s.T}


def batch(labels):
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(8, 4, generator=g), torch.rand(8, 5, generator=g)
    a[:, 0] = (a[:, 0] > 0.5).float()
    return {"a": a, "b": b, "y": labels}


def module(model, output="logits_per_image"):
    return CausalRepairModule(model, [CounterfactualFairnessTerm(AttributeFlip(0))], output=output, explain=0,
                              unpack_batch=lambda b: ((b["a"], b["b"]), b["y"], None))


def test_class_labels_beside_the_similarity_matrix_are_refused():
    repair = module(Towers())
    weights = [p.detach().clone() for p in repair.parameters()]
    state = torch.random.get_rng_state()
    with pytest.raises(MisconfigurationException) as err:
        repair.objective(batch(torch.tensor([3, 1, 0, 2, 3, 1, 0, 2])))
    text = str(err.value)
    assert "it is [8, 8] for a batch of 8 rows and [7, 7] for its first 7: an in-batch score matrix" in text
    assert "label 3 of row 0: caption 3 of the batch" in text and "zero-shot classifier" in text
    assert all(m.training for m in repair.modules()) and torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, w) for p, w in zip(repair.parameters(), weights))


def test_infonce_labels_and_a_classifier_as_wide_as_the_batch_train():
    total, _ = module(Towers()).objective(batch(torch.arange(8)))  # each image's own caption: InfoNCE's labels
    assert torch.isfinite(total)
    torch.manual_seed(0)
    classifier = nn.Sequential(nn.Linear(9, 8))  # 8 classes, a batch of 8 rows by chance
    repair = CausalRepairModule(classifier, [CounterfactualFairnessTerm(AttributeFlip(0))],
                                unpack_batch=lambda b: (torch.cat([b["a"], b["b"]], 1), b["y"], None))
    total, _ = repair.objective(batch(torch.tensor([3, 1, 0, 2, 7, 5, 6, 4])))
    assert torch.isfinite(total)
