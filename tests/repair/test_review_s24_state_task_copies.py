"""The task a CausalRepairModule's ``task_loss`` states for its network (label_task.state_task, held by weak reference)
follows the repair module: its copies' networks (deepcopy, a pickle: ddp_spawn's processes) are other objects, and of
two repair modules around one network the one fitted states its own."""

import copy
import pickle

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.audits.label_task import label_task
from lightning_causal.repair.module import CausalRepairModule
from tests.helpers.lightning import quick_trainer


def test_a_copied_or_unpickled_repair_module_states_the_task_for_its_own_network():
    net = nn.Linear(2, 2)
    repair = CausalRepairModule(net, [], task_loss=nn.CrossEntropyLoss())
    for copied in (copy.deepcopy(repair), pickle.loads(pickle.dumps(repair))):
        assert copied.model is not net
        assert label_task(copied.model) == "multiclass"  # None before: the record was the original network's
    assert label_task(copy.deepcopy(nn.Linear(2, 2))) is None  # a network no repair module holds says nothing


def test_of_two_repair_modules_around_one_network_the_one_fitted_states_its_task():
    net = nn.Linear(2, 2)
    first = CausalRepairModule(net, [], task_loss=nn.CrossEntropyLoss())
    CausalRepairModule(net, [], task_loss=nn.BCEWithLogitsLoss())  # built later, not fitted
    assert label_task(net) == "multilabel"
    data = DataLoader(TensorDataset(torch.randn(4, 2), torch.tensor([0, 1, 0, 1])), batch_size=4)
    quick_trainer(max_steps=1, num_sanity_val_steps=0).fit(first, data)
    assert label_task(net) == "multiclass"  # 'multilabel' before: the other module's loss
