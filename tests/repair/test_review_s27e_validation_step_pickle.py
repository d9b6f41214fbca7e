"""ValidationStepWithData (717e5710, f1f7f025) keeps a step set on the module in its ``__dict__``: after Lightning's
``to_uncompiled`` (which sets the module's own bound ``validation_step`` back), pickling the module (``torch.save`` of
the whole module, ``ddp_spawn``, multiprocessing) stored that bound method, and loading it read ``validation_step`` on
a module whose state was not yet set: the descriptor read ``module._trainer``, not there yet, and the load failed with
"'CausalRepairModule' object has no attribute 'validation_step'" (a plain LightningModule loads)."""

from __future__ import annotations

import pickle

import torch
from lightning.pytorch.utilities.compile import from_compiled, to_uncompiled
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalRepairModule
from tests.helpers.lightning import trainer


def test_a_repair_module_set_back_by_to_uncompiled_pickles(tmp_path):
    torch.manual_seed(0)
    repair = CausalRepairModule(nn.Linear(4, 2), terms=[])
    to_uncompiled(from_compiled(torch.compile(repair)))  # the module's own bound step set back on it
    loaded = pickle.loads(pickle.dumps(repair))  # failed before: AttributeError on validation_step
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(loaded.model(x), repair.model(x))
    (metrics,) = trainer(tmp_path).validate(loaded, DataLoader(TensorDataset(x, torch.arange(8) % 2), batch_size=4),
                                            verbose=False)
    expected = nn.functional.cross_entropy(repair.model(x), torch.arange(8) % 2)
    assert abs(metrics["val_loss"] - expected.item()) < 1e-6  # the loaded module's step validates as the original's
