"""The weight of an ``nn.Embedding(max_norm=...)``, which every pass renormalises in place where it looks rows up, is
copied once per audit (review of be0b621b): the copy was made by every ``audit_mode`` block, and an estimator opens one
per chunk of rows (``ClassProbability``'s calls in ``sobol_indices``) and per estimator inside an audit, so a Sobol'
analysis of 1024 samples in chunks of 256 copied a 32 MB table 92 times (2.9 GB, 5.1 s against 1.1 s without copies).
The weight is still put back after each block, so every chunk's passes see it as trained."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal import CausalGraphAudit, Probe, audit_model
from lightning_causal.causal import ClassProbability, EmpiricalMarginals, sobol_indices
from lightning_causal.causal.engine.state import audit_mode

V = 30


class IdModel(nn.Module):
    """Column 0 an id (a float, rounded), looked up in an embedding with ``max_norm``; columns 1.. dense."""

    def __init__(self, max_norm: float = 1.0):
        super().__init__()
        self.emb = nn.Embedding(V, 4, max_norm=max_norm)
        self.fc = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2))

    def forward(self, x):
        ids = x[:, 0].round().long().clamp(0, V - 1)
        return self.fc(torch.cat([self.emb(ids), x[:, 1:]], 1))


def _model_and_rows(max_norm: float = 1.0):
    torch.manual_seed(0)
    model = IdModel(max_norm).eval()
    with torch.no_grad():
        model.emb.weight.mul_(10)  # every row's norm above max_norm: any row a pass looks up is renormalised
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randint(1, 10, (32, 1), generator=g).float(), torch.randn(32, 2, generator=g)], 1)
    return model, x


def _weight_copies(monkeypatch, weight):
    """Count the clones of ``weight``'s memory (``weight.detach().clone()``)."""
    count = [0]
    clone = torch.Tensor.clone

    def counting(self, *args, **kwargs):
        if self.data_ptr() == weight.data_ptr() and self.shape == weight.shape:
            count[0] += 1
        return clone(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "clone", counting)
    return count


def test_a_sobol_analysis_in_chunks_copies_the_renormalised_weight_once_and_puts_it_back(monkeypatch):
    model, x = _model_and_rows()
    before = model.emb.weight.detach().clone()
    copies = _weight_copies(monkeypatch, model.emb.weight)
    sobol_indices(ClassProbability(model, target=1), EmpiricalMarginals(x), n=256, n_bootstrap=0, max_batch_size=64)
    assert copies[0] == 1  # 80 before: one per chunk, per check and per block around them
    assert torch.equal(model.emb.weight, before)


def test_an_audit_copies_the_renormalised_weight_once_and_puts_it_back(monkeypatch):
    model, x = _model_and_rows()
    before = model.emb.weight.detach().clone()
    copies = _weight_copies(monkeypatch, model.emb.weight)
    audit_model(model, [CausalGraphAudit(["fc.0", "fc.1"], target=1)], Probe(x))
    assert copies[0] == 1  # 23 before
    assert torch.equal(model.emb.weight, before)


def test_each_chunk_sees_the_weight_as_trained():
    """A block inside another starts on the values the outer one copied: a row renormalised once gives the output
    of a pass on the trained weight, not of a second renormalisation (which can differ in its last bits)."""
    model, x = _model_and_rows(max_norm=0.1)
    fresh = IdModel(0.1).eval()
    fresh.load_state_dict(model.state_dict())
    probability = ClassProbability(model, target=1)
    with audit_mode(model):
        first = probability(x)
        second = probability(x)  # the rows of x renormalised by the first call, put back in between
    with torch.no_grad():
        expected = fresh(x).softmax(1)[:, 1]
        again = fresh(x).softmax(1)[:, 1]  # a second pass on the renormalised rows: other last bits
    assert not torch.equal(again, expected)
    assert torch.equal(first, expected) and torch.equal(second, expected)
    assert torch.equal(model.emb.weight, _model_and_rows(max_norm=0.1)[0].emb.weight)
