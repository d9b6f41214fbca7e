"""final_read_C45 finding 1: docs/your_model.md says a temporal shift network that shifts along the flattened
``[N·T, C, H, W]`` frames is refused naming the module that mixes the clips and the view back. Only the stacked-rows
check (``RowsAlone``) named it; through ``input_effects`` and ``InputEffectAudit`` the clean probe's check refused first
with the general cause (a branch on a batch statistic). Its refusal now names the module (``stacked_rows.mixing_module``,
at a refusal only, hooks, generators and the model put back)."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit
from lightning_causal.audits import Probe
from lightning_causal.causal import input_effects
from tests.causal.test_review_newuser121_state_hint import Lit
from tests.causal.test_trial_newuser119_mixed_rows_named import BatchAttention, T, _model

MASK = torch.arange(T).reshape(1, T, 1, 1, 1)  # one feature per frame
NAMED = "module 'shift' mixes the rows of the pass"
VIEW_BACK = "view the rows back per sample and shift there, x.view(-1, T, *x.shape[1:]) along dimension 1, or make the"


def _clips(n: int) -> torch.Tensor:
    return 4 * torch.randn(n, T, 1, 6, 6, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("n", [5, 16])
def test_input_effects_names_the_shift_along_the_folded_frames(n):
    model, x = _model(True), _clips(n)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    with pytest.raises(ValueError, match="treat samples independently") as err:
        input_effects(model, x, MASK)
    said = str(err.value)
    assert NAMED in said and f"it folds {T} rows per row of the pass" in said and VIEW_BACK in said  # was the branch cause
    assert "control flow on a batch statistic" not in said
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())  # no hook left behind
    assert torch.equal(torch.get_rng_state(), rng) and not model.training
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    fixed = _model(False)  # the same weights, the shift along T: it runs
    assert input_effects(fixed, x, MASK).shape[0] == n


@pytest.mark.parametrize("n", [5, 16])
def test_the_audit_names_the_shift_run_and_in_a_fit(n, tmp_path):
    x, y = _clips(n), torch.arange(n) % 3
    with pytest.raises(ValueError, match="treat samples independently") as err:
        InputEffectAudit(feature_mask=MASK).run(_model(True), Probe(x, y))
    said = str(err.value)
    assert NAMED in said and "view the rows back per sample" in said and "or make the forward per-sample" in said
    assert "control flow on a batch statistic" not in said
    # in a fit the set-up's dry run of 2 samples refuses first, in the stacked rows' words: the module is named there too
    callback = CausalAuditCallback([InputEffectAudit(feature_mask=MASK)], probe_size=n, every_n_epochs=1)
    trainer = pl.Trainer(max_epochs=1, callbacks=[callback], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    with pytest.raises(MisconfigurationException) as err:
        trainer.fit(Lit(_model(True)), DataLoader(TensorDataset(x, y), batch_size=n))
    said = str(err.value)
    assert "module 'net.shift' mixes the rows of the pass" in said and "x.view(-1, T, *x.shape[1:])" in said
    assert "control flow on a batch statistic" not in said


def test_a_module_attending_across_the_batch_is_named_and_functional_mixing_keeps_the_general_cause():
    torch.manual_seed(0)
    attending = nn.Sequential(nn.Linear(3, 3), BatchAttention(), nn.Linear(3, 2)).eval()
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(2))
    with pytest.raises(ValueError, match="treat samples independently") as err:
        input_effects(attending, x)
    assert "module '1' mixes the rows of the pass" in str(err.value) and "make it per-row, or make the" in str(err.value)

    class Pooled(nn.Module):  # mixed in functional code after its module: no module is said to mix them
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.fc(x)
            return h + 0.5 * h.mean(0)

    with pytest.raises(ValueError, match="treat samples independently") as err:
        input_effects(Pooled().eval(), torch.randn(6, 3, generator=torch.Generator().manual_seed(3)) + 2)
    assert "mixes the rows of the pass" not in str(err.value) and "control flow on a batch statistic" in str(err.value)
