"""CausalRepairModule of a recommender with ``nn.Embedding(sparse=True)`` (newuser61 trial): its default optimizer,
Adam over every parameter, stopped the fit at the first step on torch's "Adam does not support sparse gradients,
please consider SparseAdam instead", which CausalRepairModule cannot be told to use. It is now refused before the first
step, naming the embeddings and the way (two optimizers under manual optimization), and that way trains: SparseAdam
moves only the rows the batches looked up, with the fairness term in the loss."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalRepairModule, CounterfactualFairnessTerm
from lightning_causal.causal import AttributeFlip

from ..helpers.lightning import trainer


class UserNet(nn.Module):
    """x [N, 2]: a 0/1 gender column and a user id (cast inside) looked up in a sparse table."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.users = nn.Embedding(1000, 4, sparse=True)
        self.head = nn.Linear(5, 2)

    def forward(self, x):
        return self.head(torch.cat([x[:, :1], self.users(x[:, 1].long())], 1))


class TwoOptimizers(CausalRepairModule):
    """The way the refusal gives."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.automatic_optimization = False

    def configure_optimizers(self):
        rest = [p for name, p in self.model.named_parameters() if name != "users.weight"]
        return [torch.optim.SparseAdam([self.model.users.weight], lr=0.01), torch.optim.Adam(rest, lr=0.01)]

    def training_step(self, batch, batch_idx):
        optimizers = self.optimizers()
        for opt in optimizers:
            opt.zero_grad()
        total, logs = self.objective(batch, batch_idx)
        self.log_dict(logs)
        self.manual_backward(total)
        for opt in optimizers:
            opt.step()
        return total


def _loader():
    g = torch.Generator().manual_seed(0)
    x = torch.stack([torch.randint(0, 2, (64,), generator=g).float(), torch.randint(0, 500, (64,), generator=g).float()], 1)
    return DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=16)


def test_the_default_optimizer_refuses_sparse_embeddings_before_the_first_step(tmp_path):
    module = CausalRepairModule(UserNet(), [CounterfactualFairnessTerm(AttributeFlip(0))])
    before = module.model.users.weight.detach().clone()
    with pytest.raises(MisconfigurationException, match=r"sparse gradient.*\['users'\].*SparseAdam.*manual_backward"):
        trainer(tmp_path, max_epochs=1).fit(module, _loader())
    assert torch.equal(module.model.users.weight, before)


def test_two_optimizers_under_manual_optimization_train_the_looked_up_rows(tmp_path):
    module = TwoOptimizers(UserNet(), [CounterfactualFairnessTerm(AttributeFlip(0))])
    before = module.model.users.weight.detach().clone()
    loader = _loader()
    trainer(tmp_path, max_epochs=1).fit(module, loader)
    seen = torch.zeros(1000, dtype=torch.bool)
    seen[loader.dataset.tensors[0][:, 1].long()] = True
    moved = (module.model.users.weight != before).any(1)
    assert torch.equal(moved, seen)  # SparseAdam: every looked-up row, no other
    assert "repair/counterfactual_fairness" in module.trainer.callback_metrics


def test_a_frozen_sparse_embedding_is_not_refused_and_stays_as_it_was(tmp_path):
    """Review of 409720c0: a frozen sparse table (the ids kept, the head repaired) gives no gradient to Adam, which
    trains the rest; it was refused too."""
    model = UserNet()
    model.users.weight.requires_grad_(False)
    module = CausalRepairModule(model, [CounterfactualFairnessTerm(AttributeFlip(0))])
    table, head = model.users.weight.detach().clone(), model.head.weight.detach().clone()
    trainer(tmp_path, max_epochs=1).fit(module, _loader())
    assert torch.equal(model.users.weight, table)
    assert not torch.equal(model.head.weight, head)
    assert "repair/counterfactual_fairness" in module.trainer.callback_metrics
