"""Review of b7010a43: ``<layer>/top1_importance`` is NaN where a unit's importance is NaN, so ``AuditEarlyStopping`` on
it stops training at that audit under Lightning's default ``check_finite=True``, which Lightning says only under
``verbose=True``: the fit ended after its first audit with no word of the stop (the audit's own warning says only that
its values are NaN). ``AuditEarlyStopping`` now warns when it stops at a non-finite value, naming the way on
(``check_finite=False``: such an audit counts as no improvement)."""

import warnings

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import AuditEarlyStopping, CausalAuditCallback, UnitImportanceAudit

MONITOR = "causal/unit_importance/h/top1_importance"


class _NaNUnit(pl.LightningModule):
    """``h = (lin(x), 2)`` at the Identity ``h``; the output adds ``sqrt(h_3 - 1)``: setting unit 3 to 0 gives NaN
    (``nan_unit=False``: ``sqrt(|h_3 - 1|)``, finite under every ablation)."""

    def __init__(self, nan_unit: bool = True) -> None:
        super().__init__()
        self.lin, self.h, self.out, self.nan_unit = nn.Linear(4, 3), nn.Identity(), nn.Linear(3, 2), nan_unit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.lin(x)
        h = self.h(torch.cat([z, torch.full_like(z[:, :1], 2.0)], 1))
        extra = h[:, 3:] - 1
        return self.out(h[:, :3]) + (extra if self.nan_unit else extra.abs()).sqrt()

    def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN201
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(tmp_path, stop: AuditEarlyStopping, nan_unit: bool = True) -> tuple[CausalAuditCallback, list[str]]:  # noqa: ANN001
    torch.manual_seed(0)
    x = torch.randn(16, 4)
    audit = CausalAuditCallback([UnitImportanceAudit(["h"], target=1)], probe_size=8, report_dir=tmp_path)
    trainer = pl.Trainer(max_epochs=3, callbacks=[audit, stop], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(_NaNUnit(nan_unit), DataLoader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=8))
    return audit, [str(w.message) for w in caught if str(w.message).startswith("AuditEarlyStopping(")]


def test_a_stop_at_a_nan_audit_is_said(tmp_path):
    audit, said = _fit(tmp_path, AuditEarlyStopping(MONITOR, mode="max", patience=5))
    assert audit.audited_epochs == [0]  # stopped at the first audit: top1_importance NaN (b7010a43)
    assert said == [f"AuditEarlyStopping(monitor={MONITOR!r}) stopped training after the audit of epoch 0: the audit's value "
                    "is nan (`check_finite=True`, Lightning's default, stops at a NaN or infinite value); the audit's warning "
                    "of NaN or infinite values says where it comes from. Pass `check_finite=False` to count such an audit as "
                    "no improvement and train on"]  # before: nothing


@pytest.mark.parametrize("nan_unit", [True, False])
def test_no_word_where_the_stop_is_not_at_a_non_finite_value(tmp_path, nan_unit):
    if nan_unit:  # the way out the warning gives: every audit counts as no improvement, the fit goes on to max_epochs
        stop = AuditEarlyStopping(MONITOR, mode="max", patience=5, check_finite=False)
        audit, said = _fit(tmp_path, stop)
        assert audit.audited_epochs == [0, 1, 2] and stop.wait_count == 3 and said == []
    else:  # a stop of another cause (a threshold reached at a finite value) is Lightning's to say
        stop = AuditEarlyStopping(MONITOR, mode="max", patience=5, stopping_threshold=0.0)
        audit, said = _fit(tmp_path, stop, nan_unit=False)
        assert audit.audited_epochs == [0] and said == []
