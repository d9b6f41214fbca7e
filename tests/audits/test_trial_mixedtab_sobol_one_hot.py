"""SobolAudit on a tabular probe with a one-hot block: the default empirical sampler (one group per
column) drew each column of the block on its own, so more than half of the rows it scored had no
category or several (3 levels: P(all zero) = 8/27, P(several) = 7/27), silently."""

import warnings
from types import SimpleNamespace

import torch
from torch import nn

from lightning_causal import SobolAudit
from lightning_causal.audits.base import Probe


class Recorder(nn.Module):
    """A classifier that records how many of the rows it sees have a valid one-hot block (columns 2..4)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(5, 2)
        self.tally = SimpleNamespace(rows=0, valid=0)  # not number attributes: audit_mode puts those back

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        block = x[:, 2:5]
        self.tally.rows += x.shape[0]
        self.tally.valid += int((((block == 0) | (block == 1)).all(1) & (block.sum(1) == 1)).sum())
        return self.net(x)

    @property
    def rows(self) -> int:
        return self.tally.rows

    @property
    def valid(self) -> int:
        return self.tally.valid


def _probe() -> Probe:
    g = torch.Generator().manual_seed(0)
    cat = torch.randint(0, 3, (64,), generator=g)
    return Probe(torch.cat([torch.randn(64, 2, generator=g), nn.functional.one_hot(cat, 3).float()], 1))


def _sobol_warnings(audit: SobolAudit, model: nn.Module, dry: bool = False) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (audit.dry_run if dry else audit.run)(model, _probe())
    return [str(w.message) for w in caught if "one-hot block" in str(w.message)]


def test_split_one_hot_block_warns_naming_it_and_the_mask() -> None:
    torch.manual_seed(0)
    model = Recorder()
    messages = _sobol_warnings(SobolAudit(n=256, feature_names=["age", "hours", "wc=a", "wc=b", "wc=c"]), model)
    assert len(messages) == 1
    assert "['wc=a', 'wc=b', 'wc=c'] in 3 groups" in messages[0] and "feature_mask" in messages[0]
    assert model.valid < 0.7 * model.rows  # what it warns about: rows with no category or several
    # the callback's 2-sample dry run checks the whole probe instead, once
    assert len(_sobol_warnings(SobolAudit(n=256), Recorder(), dry=True)) == 1


def test_block_as_one_group_is_drawn_as_observed_and_stays_silent() -> None:
    torch.manual_seed(0)
    model = Recorder()
    assert _sobol_warnings(SobolAudit(n=256, feature_mask=torch.tensor([[0, 1, 2, 2, 2]])), model) == []
    assert model.rows > 0 and model.valid == model.rows
