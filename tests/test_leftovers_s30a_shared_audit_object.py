"""leftovers_s30a: two CausalAuditCallbacks holding the same audit object (so audits of the same names) meet Lightning's
check of stateful callbacks' ``state_key`` in ``Trainer(...)``, before any hook of the callback runs, so the package's
own refusal (naming the shared audit object, at set-up) cannot come first without changing the checkpoint key; the
``audits`` argument's docs say so, with the way out. This pins what they say (Lightning's words they quote), and that
callbacks whose keys differ reach the package's refusal naming the shared object."""

import lightning.pytorch as pl
import pytest
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback
from tests.callbacks.test_trial_newuser17_custom_audit import WeightNorm, _Linear


def _trainer(callbacks) -> pl.Trainer:  # noqa: ANN001
    return pl.Trainer(max_epochs=1, callbacks=callbacks, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False)


def test_one_audit_object_in_two_callbacks_meets_lightnings_check_first():
    shared = WeightNorm(0, name="w")
    assert "Found more than one stateful callback of type `CausalAuditCallback`" in " ".join(CausalAuditCallback.__doc__.split())
    with pytest.raises(RuntimeError, match="Found more than one stateful callback of type `CausalAuditCallback`"):
        _trainer([CausalAuditCallback([shared], probe_size=4), CausalAuditCallback([shared], probe_size=4)])


def test_with_keys_apart_the_package_names_the_shared_object():
    shared = WeightNorm(0, name="w")
    trainer = _trainer([CausalAuditCallback([shared, WeightNorm(1, name="v")], probe_size=4),
                        CausalAuditCallback([shared], probe_size=4)])
    loader = DataLoader(TensorDataset(torch.arange(24.0).reshape(8, 3) / 10, torch.tensor([0, 1] * 4)), batch_size=4)
    with pytest.raises(MisconfigurationException, match=r"\['w'\] is one audit object listed in both"):
        trainer.fit(_Linear(), loader)
