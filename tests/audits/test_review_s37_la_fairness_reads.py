"""Review of leftovers_s37a's FairnessAudit changes (7e265bf8, 1ca786bb).

- `run` skipped the probe's group-id check for a model its `validate` had checked, though the probe `run` is given need
  not be validate's: fractional group ids then failed late, after the gap was computed, naming `groups`, a parameter
  nobody passed (test_fairness_audit's callable-on-a-continuous-column case), where a fresh audit names `sensitive=`.
- With compare="output" on a regression of several outputs, the group rates read the argmax of the outputs (column 1
  the largest, whatever `target=`), where the note says they are the shares of outputs above 0.
- Under the callback a regression's warning came once or twice a fit, by the data: the 2-row dry run quoted the labels
  of its 2 rows, the full run those of the whole probe, two texts the once-per-fit collector both showed.
"""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import FairnessAudit, Probe


def _flip_column_2(rows: torch.Tensor) -> torch.Tensor:
    return torch.cat([rows[:, :2], 2 - rows[:, 2:3], rows[:, 3:]], 1)


def test_run_checks_the_group_ids_of_a_probe_other_than_validates():
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    x = torch.randn(20, 4)
    x[:, 2] = (torch.arange(20) % 3).float()
    fractional = x.clone()
    fractional[:, 2] = torch.linspace(0.05, 1.95, 20)
    audit = FairnessAudit(_flip_column_2, sensitive=2)
    audit.validate(model, Probe(x))
    with pytest.raises(ValueError, match=r"`sensitive=2` of the probe to hold integral group ids"):
        audit.run(model, Probe(fractional))
    audit.run(model, Probe(x))  # validate's own probe runs


def test_output_rates_of_a_regression_of_several_outputs_read_the_compared_column():
    torch.manual_seed(0)
    n = 40
    x = torch.randn(n, 4)
    x[:, 3] = (torch.arange(n) % 2).float()
    reg = nn.Linear(4, 2)
    with torch.no_grad():
        reg.weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 2.0], [0.0, 1.0, 0.0, -3.0]]))
        reg.bias.copy_(torch.tensor([5.0, 0.5]))
    y = reg(x).detach() + 0.1 * torch.randn(n, 2)  # a regression target
    from lightning_causal.causal import AttributeFlip

    r = FairnessAudit(AttributeFlip(3), compare="output", target=1).run(reg, Probe(x, y))
    out = reg(x).detach()
    for g in (0, 1):
        rows = x[:, 3] == g
        assert r.scalars[f"positive_rate/group_{g}"] == pytest.approx(float((out[rows, 1] > 0).double().mean()))
    assert any("shares of outputs above 0" in n for n in r.meta["notes"])


def test_the_callback_says_a_regressions_warning_once_a_fit(tmp_path):
    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    from lightning_causal import CausalAuditCallback
    from lightning_causal.causal import AttributeFlip

    class Regressor(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Linear(5, 1)

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, _):
            return (self(batch[0]).squeeze(1) - batch[1]).pow(2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), 0.01)

    torch.manual_seed(0)
    x = torch.randn(32, 5)
    x[:, 4] = (x[:, 4] > 0).float()
    y = torch.tensor([0.5, -2.0] + [3.0 + i for i in range(30)])  # the 2 dry-run rows hold one value beyond [0, 1]
    cb = CausalAuditCallback([FairnessAudit(AttributeFlip(4), compare="probability")], probe=(x, y), every_n_epochs=1)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        L.Trainer(max_epochs=1, callbacks=[cb], logger=False, enable_checkpointing=False, enable_progress_bar=False,
                  enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0, default_root_dir=tmp_path).fit(
            Regressor(), DataLoader(TensorDataset(x, y), batch_size=16))
    said = [str(w.message) for w in seen if "are a regression target such as" in str(w.message)]
    assert len(said) == 1, said


def test_world_gaps_under_compare_output_are_in_the_outputs_units():
    """Untested in 1ca786bb: on a linear regressor the gap between two worlds is |the weights times the change|."""
    from lightning_causal.causal import AttributeFlip
    from lightning_causal.causal.scm.intersections import Intersections

    n = 40
    race = torch.arange(n) // 2 % 2
    x = torch.cat([(torch.arange(n) % 2).float()[:, None], nn.functional.one_hot(race, 2).float(),
                   torch.randn(n, 2, generator=torch.Generator().manual_seed(0))], 1)
    reg = nn.Linear(5, 1)
    with torch.no_grad():
        reg.weight.copy_(torch.tensor([[2.0, 0.0, 5.0, 1.0, 1.0]]))  # sex moves the output by 2, race 1 by 5
        reg.bias.fill_(10.0)
    cf = Intersections(AttributeFlip(0), {"sex": 0, "race": [1, 2]})
    r = FairnessAudit(cf, worlds=True, compare="output").run(reg, Probe(x))
    gaps = {row["name"]: row["gap"] for row in r.tables["world_gaps"]}
    assert r.scalars["world_gap_max"] == pytest.approx(7.0, abs=1e-5)  # sex and race together: 2 + 5
    assert gaps["sex=0 × race=1 ↔ sex=1 × race=0"] == pytest.approx(3.0, abs=1e-5)  # 5 - 2
    assert gaps["sex=0 × race=0 ↔ sex=1 × race=0"] == pytest.approx(2.0, abs=1e-5)
