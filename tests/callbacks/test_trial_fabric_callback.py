"""CausalAuditCallback given to Lightning Fabric as one of its callbacks (``Fabric(callbacks=[...])``,
``fabric.call(hook, fabric, model)``): each hook that audits refuses the Fabric object with a message naming
what a Fabric loop does instead. Before, ``on_train_epoch_end`` failed on ``'Fabric' object has no attribute
'sanity_checking'``, ``on_train_start`` on ``num_training_batches``, ``on_train_end`` on ``current_epoch``."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_causal import CausalAuditCallback, InputEffectAudit

Fabric = pytest.importorskip("lightning.fabric").Fabric


@pytest.mark.parametrize(("hook", "args"), [("on_train_epoch_end", ()), ("on_train_start", ()), ("on_train_end", ()),
                                            ("setup", ("fit",))])
def test_fabric_call_of_an_audit_hook_names_the_fabric_recipe(hook, args):
    callback = CausalAuditCallback([InputEffectAudit()])
    fabric = Fabric(accelerator="cpu", devices=1, callbacks=[callback])
    model = fabric.setup(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)))
    weights = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(MisconfigurationException, match=rf"Trainer callback, but its `{hook}` was called with a Fabric") as err:
        fabric.call(hook, fabric, model, *args)
    message = str(err.value)
    assert "audit.run(model.module, probe)" in message and "Without Trainer: Fabric and plain loops" in message
    assert callback.audited_epochs == [] and all(torch.equal(a, b) for a, b in zip(weights, model.parameters()))
