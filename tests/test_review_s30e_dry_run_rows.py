"""Review of f388481e: the dry runs of CounterfactualAudit, FairnessAudit and BackdoorAudit check that the model treats
its samples independently; they checked it on the whole probe in one pass, where BackdoorAudit's run takes the first
``max_samples`` samples only and FairnessAudit's factual pass runs in chunks of the memory budget (rows_per_pass): a
probe of 40 rows ran 40 rows at once for BackdoorAudit(max_samples=4), and a wide probe ran whole where the run takes
64 rows a pass. The check now runs the rows of the run's first pass, and still refuses a batch-coupled model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal import BackdoorAudit, FairnessAudit
from lightning_causal.audits import Probe
from lightning_causal.causal import AttributeFlip


class Centred(nn.Module):
    """Logits ``[s, -s]``, ``s = x0 + x1`` less its mean over the batch: each sample's class depends on its batch."""

    def forward(self, x):
        s = x[:, :1] + x[:, 1:2]
        s = s - s.mean(0, keepdim=True)
        return torch.cat([s, -s], 1)


def _rows(model, call):
    rows: list[int] = []
    handle = model.register_forward_pre_hook(lambda m, a: rows.append(a[0].shape[0]))
    try:
        call()
    finally:
        handle.remove()
    return rows


def test_backdoor_dry_run_checks_the_samples_its_run_takes():
    torch.manual_seed(0)
    model, x = nn.Linear(3, 2), torch.randn(40, 3)
    probe = Probe(x, torch.zeros(40, dtype=torch.long))
    audit = BackdoorAudit(steps=2, max_samples=4)
    run = _rows(model, lambda: audit.run(model, probe))
    dry = _rows(model, lambda: audit.dry_run(model, probe))
    assert run[0] == 4  # the run's clean pass: its 4 samples (then the trigger search's batches)
    assert dry[0] == 4  # the check's pass; before: the whole probe, 40 rows in one pass


def test_the_dry_run_still_refuses_a_batch_coupled_model_on_those_samples():
    x = torch.tensor([[1.0, 0.0], [1.5, 0.0], [3.0, 0.0], [10.0, 0.0]])
    probe = Probe(x, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="Expected the model to treat samples independently.*batch of 3"):
        BackdoorAudit(steps=2, max_samples=3).dry_run(Centred(), probe)
    with pytest.raises(ValueError, match="Expected the model to treat samples independently.*batch of 4"):
        FairnessAudit(AttributeFlip(1)).dry_run(Centred(), probe)


def test_fairness_dry_run_checks_the_factual_pass_chunk():
    """Rows of 150 000 features (600 kB): the factual pass runs them in chunks of the memory budget, fewer than the 80
    samples; the dry run's check runs one such chunk, not the 80 rows."""
    torch.manual_seed(0)
    model = nn.Linear(150_000, 2)
    x = torch.randn(80, 150_000)
    x[:, 0] = (x[:, 0] > 0).float()
    probe = Probe(x, torch.randint(0, 2, (80,)))
    audit = FairnessAudit(AttributeFlip(0))
    run = _rows(model, lambda: audit.run(model, probe))
    chunk = run[5]  # after the outputs' check (1 row), the trial pass of 4 rows and its first, an inner and last row
    # alone (1, 1, 1: the stacked-rows check of the factual pass, leftovers_s43a): the factual pass's first chunk
    assert 2 < chunk < 80
    dry = _rows(model, lambda: audit.dry_run(model, probe))
    assert max(dry) == chunk  # before: 80
