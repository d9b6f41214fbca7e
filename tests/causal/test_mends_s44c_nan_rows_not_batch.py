"""A per-row RevIN-style model (each window divided by its own std, no eps) whose window an intervention sets to one
value: 0 / 0 = NaN where the pass's reduction is exact, a finite rounding residue where the row runs alone. That is a
non-finite output, named with its way out, not "the model's forward depends on its batch"."""
import torch

from lightning_causal import InputEffectAudit, audit_model


class _RevIn(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(16, 1)

    def forward(self, x):  # [N, 16, 1], each row normalised by its own window's statistics
        mu, sd = x.mean(1, keepdim=True), x.std(1, keepdim=True)
        return self.lin(((x - mu) / sd).flatten(1)) * sd[:, 0] + mu[:, 0]


def test_a_window_set_to_one_value_is_named_non_finite_not_batch_dependent():
    torch.manual_seed(0)
    model = _RevIn()
    data = torch.utils.data.TensorDataset(torch.randn(32, 16, 1), torch.randn(32, 1))
    audit = InputEffectAudit(feature_mask=torch.zeros(1, 16, 1, dtype=torch.long))
    result = audit_model(model, [audit], data, probe_size=32)[0]  # refused at HEAD: StackedRowsError
    notes = " ".join(result.meta.get("notes") or [])
    assert "not finite" in notes and "RevIN" in notes
    assert result.scalars["mean_abs_effect"] != result.scalars["mean_abs_effect"]  # NaN, said, not a number made up


def test_a_batch_statistic_nan_for_one_row_is_still_refused():
    from lightning_causal.causal.engine.batching import map_rows
    from lightning_causal.causal.engine.stacked_rows import StackedRowsError, rows_alone_checked

    x = torch.arange(8.0)
    with rows_alone_checked("a check"):  # x / x.std() over the pass: finite in the pass, NaN for a row alone
        try:
            map_rows(8, 8, lambda idx: x[idx] / x[idx].std(), x.device)
        except StackedRowsError:
            return
    raise AssertionError("a batch statistic was not refused")
