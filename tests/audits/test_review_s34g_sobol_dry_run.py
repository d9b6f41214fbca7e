"""Review of newuser72's video audit times: SobolAudit's dry run on 2 probe samples ran the audit's whole estimate,
``(G + 2) n`` evaluations whatever the probe's size, so ``audit_model`` (and the callback at set-up) spent as long on the
check as on the audit (44 s and 45 s for 64 tubes of 8 clips ``[1, 16, 32, 32]``, n=64, one thread). The dry run now
draws at most ``DRY_RUN_N`` base samples, and the audit's ``n`` is put back, also where it raises."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.audits import Probe, SobolAudit
from lightning_causal.audits.sobol import DRY_RUN_N


def _counted() -> tuple[nn.Module, list[int]]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(8, 3)).eval()
    rows: list[int] = []
    model.register_forward_pre_hook(lambda _, args: rows.append(int(args[0].shape[0])))
    return model, rows


def test_the_dry_run_draws_few_base_samples_and_keeps_the_audits_n():
    model, rows = _counted()
    audit = SobolAudit(n=256, n_bootstrap=0, target=0)
    probe = Probe(torch.randn(16, 8), torch.zeros(16, dtype=torch.long))
    assert audit.dry_run(model, probe) is not None
    assert audit.n == 256
    assert sum(rows) <= 2 * (8 + 2) * DRY_RUN_N  # 206 rows; was over (8 + 2) * 256 = 2,560
    rows.clear()
    full = audit.run(model, probe)
    assert full.scalars and sum(rows) >= (8 + 2) * 256  # the run itself keeps its n


def test_the_audits_n_is_put_back_where_the_dry_run_raises():
    model, _ = _counted()
    audit = SobolAudit(n=64, n_bootstrap=0, target=7)  # no class 7 among 3 outputs
    with pytest.raises((ValueError, IndexError, RuntimeError)):
        audit.dry_run(model, Probe(torch.randn(4, 8), torch.zeros(4, dtype=torch.long)))
    assert audit.n == 64
