"""A recommender's id embeddings (newuser61 trial): ``nn.Embedding(sparse=True)`` trained with ``SparseAdam``, and
``nn.Embedding(max_norm=...)``, whose forward renormalises the rows it looks up in place.

1. A fit without a validation loader audits at the end of each training epoch, where the sparse embedding still holds
   its last step's gradient, a sparse tensor: the callback's ``no_trace`` compared it with ``torch.equal``, which
   takes no sparse tensor, and the first audit stopped the fit (NotImplementedError, 'aten::equal' ... 'SparseCPU').
2. An audit's passes renormalised the rows of a ``max_norm`` embedding that they looked up (the baseline id 0, which
   training never looks up): the audited fit's weights differed from the same fit without the callback (row 0 by 2.4
   in the trial), and ``input_effects`` called directly changed the model it explained.
"""

from __future__ import annotations

import copy

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import (
    CausalAuditCallback,
    InputEffectAudit,
    Probe,
    UnitImportanceAudit,
    audit_model,
)
from lightning_causal.callbacks._no_trace import no_trace
from lightning_causal.causal import input_effects

from .helpers.lightning import trainer

N_IDS = 40


class IdScorer(nn.Module):
    """One score per id: an id embedding and a small head (ids 1..N_IDS-1 in the data; 0 is no id)."""

    def __init__(self, sparse: bool = False, max_norm: float | None = None):
        super().__init__()
        self.emb = nn.Embedding(N_IDS, 4, sparse=sparse, max_norm=max_norm)
        self.head = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))

    def forward(self, ids):  # ids [N] -> a score per sample [N]
        return self.head(self.emb(ids)).squeeze(1)


class Scorer(pl.LightningModule):
    """Two optimizers, SparseAdam for the sparse embedding and Adam for the rest: manual optimization."""

    def __init__(self, sparse: bool = False, max_norm: float | None = None):
        super().__init__()
        self.automatic_optimization = False
        self.model = IdScorer(sparse, max_norm)

    def forward(self, ids):
        return self.model(ids)

    def training_step(self, batch, batch_idx):
        ids, y = batch
        optimizers = self.optimizers()
        for opt in optimizers:
            opt.zero_grad()
        self.manual_backward(F.binary_cross_entropy_with_logits(self(ids), y))
        for opt in optimizers:
            opt.step()

    def configure_optimizers(self):
        rest = [p for name, p in self.model.named_parameters() if name != "emb.weight"]
        embedding = torch.optim.SparseAdam if self.model.emb.sparse else torch.optim.Adam
        return [embedding([self.model.emb.weight], lr=0.05), torch.optim.Adam(rest, lr=0.05)]


def _data(n: int = 64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, N_IDS, (n,), generator=g)
    return ids, (ids % 2).float()  # the rule: odd ids are liked


def _fit(root, callbacks, sparse: bool, max_norm: float | None = None):
    torch.manual_seed(0)
    module = Scorer(sparse, max_norm)
    if max_norm is not None:  # every row starts far above max_norm: any row a pass looks up is renormalised
        with torch.no_grad():
            module.model.emb.weight.mul_(10)
    train = DataLoader(TensorDataset(*_data()), batch_size=16, shuffle=True)
    trainer(root, max_epochs=2, callbacks=callbacks, num_sanity_val_steps=0).fit(module, train)
    return module


def _probe():
    ids, y = _data(16, seed=1)
    return (ids, y)


def test_a_fit_without_validation_audits_a_sparse_embedding_and_trains_as_without_the_callback(tmp_path):
    plain = _fit(tmp_path / "plain", [], sparse=True)
    audit = CausalAuditCallback([UnitImportanceAudit(["model.emb"], unit_dim=-1)], probe=_probe(),
                                report_dir=tmp_path / "reports")
    audited = _fit(tmp_path / "audited", [audit], sparse=True)
    assert audit.audited_epochs == [0, 1]
    for (name, a), b in zip(plain.state_dict().items(), audited.state_dict().values()):
        assert torch.equal(a, b), name


def test_no_trace_puts_back_a_sparse_gradient_in_the_same_tensor():
    model = IdScorer(sparse=True)
    model(torch.tensor([1, 2, 2])).sum().backward()
    grad = model.emb.weight.grad
    assert grad.layout == torch.sparse_coo
    saved = grad.to_dense().clone()
    with no_trace(model):
        grad.mul_(0)  # an audit of one's own that scales the gradient in place
    assert model.emb.weight.grad is grad
    assert torch.equal(grad.to_dense(), saved)


def _renorming_model() -> IdScorer:
    torch.manual_seed(0)
    model = IdScorer(max_norm=1.0).eval()
    with torch.no_grad():
        model.emb.weight.mul_(10)  # every row's norm above max_norm
    return model


def test_input_effects_of_an_id_leave_a_max_norm_embedding_as_found_and_equal_a_hand_do():
    model = _renorming_model()
    ids = torch.tensor([3, 5, 8])
    with torch.no_grad():
        model(ids)  # training looked these rows up: renormalised already; row 0 (no id) never
    before = model.emb.weight.detach().clone()
    hand = copy.deepcopy(model)
    with torch.no_grad():  # do(id := 0), by hand on a copy, which renormalises its row 0 as the model's pass does
        expected = hand(ids) - hand(torch.zeros_like(ids))
    effects = input_effects(model, ids, baseline=0)
    assert torch.allclose(effects.flatten(), expected, atol=1e-6)
    assert torch.equal(model.emb.weight, before)  # row 0 renormalised by the pass of do(id := 0) before the mend
    assert not torch.equal(hand.emb.weight[0], before[0])  # the hand pass did renormalise it


def test_audit_model_leaves_a_max_norm_embedding_as_found():
    model = _renorming_model()
    before = model.emb.weight.detach().clone()
    audit_model(model, [InputEffectAudit(baseline=0, ace_values=None)], Probe(torch.tensor([3, 5, 8, 9])))
    assert torch.equal(model.emb.weight, before)


def test_a_fit_of_a_max_norm_embedding_trains_as_without_the_callback(tmp_path):
    plain = _fit(tmp_path / "plain", [], sparse=False, max_norm=1.0)
    audit = CausalAuditCallback([InputEffectAudit(baseline=0, ace_values=None)], probe=_probe(),
                                report_dir=tmp_path / "reports")
    audited = _fit(tmp_path / "audited", [audit], sparse=False, max_norm=1.0)
    assert audit.audited_epochs == [0, 1]
    for (name, a), b in zip(plain.state_dict().items(), audited.state_dict().values()):
        assert torch.equal(a, b), name
