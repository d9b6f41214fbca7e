"""Validation sweep (newuser20): probe=torch.randn(5) for a model of 5 features (one sample, its
batch dimension left out) passed the callback's set-up pass (nn.Linear reads a vector as one row)
and stopped the fit with "Audit 'input_effect' is misconfigured: mat1 and mat2 shapes cannot be
multiplied (1x2 and 5x8)", naming neither the probe nor the fix."""

import pytest
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit
from tests.helpers.lightning import SgdMlp, quick_trainer

G = torch.Generator().manual_seed(0)
X, Y = torch.randn(16, 5, generator=G), torch.randint(0, 3, (16,), generator=G)


def _fit(probe) -> CausalAuditCallback:
    cb = CausalAuditCallback([InputEffectAudit()], probe=probe)
    trainer = quick_trainer(max_epochs=1, callbacks=[cb], num_sanity_val_steps=0, limit_train_batches=1, limit_val_batches=1)
    trainer.fit(SgdMlp(5), DataLoader(TensorDataset(X, Y), batch_size=16), DataLoader(TensorDataset(X, Y), batch_size=16))
    return cb


def test_a_flat_probe_is_refused_with_the_way_out():
    with pytest.raises(MisconfigurationException, match=r"`probe` to hold one row per sample but got a 1-D tensor \[5\] .*returned "
                       r"shape \[3\]: for one sample of 5 features pass probe\[None\] \(\[1, 5\]\)"):
        _fit(torch.randn(5))


def test_the_probe_with_its_batch_dimension_is_audited():
    assert "causal/input_effect/mean_abs_effect" in _fit(torch.randn(5)[None]).last_scalars
