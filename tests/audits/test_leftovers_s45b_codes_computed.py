"""Category codes that a model computes its indices from were not detected (review of newuser117, left in session 44):
codes cast inside the model (an int32 ``x_cat`` read as ``self.cat[j](x_cat[:, j].long())``: a copy, no view of the
input) and one shared table with offsets (rtdl's ``emb(x_cat + offsets)``). InputEffectAudit's ``top_tokens`` pooled
code 1 of one column with code 1 of another, and CaptumBaseline's default stability pool (``token_pool='probe'``) drew
another column's codes in silence. Category codes were also detected again at every audit run (a pass of the probe's
first rows each): now once per model and probe, again where the model's modules change."""

import pytest
import torch
from torch import nn

from lightning_causal.audits import CaptumBaseline, InputEffectAudit, Probe
from lightning_causal.audits.category_codes import code_columns

LEVELS = (3, 5, 4)


class _Cast(nn.Module):
    """An embedding per column, the int32 codes cast inside."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.cat = nn.ModuleList(nn.Embedding(n, 4) for n in LEVELS)
        self.head = nn.Linear(4 * len(LEVELS), 2)

    def forward(self, x_cat):
        return self.head(torch.cat([e(x_cat[:, j].long()) for j, e in enumerate(self.cat)], 1))


class _Offsets(nn.Module):
    """rtdl's one table: column j's codes from row offsets[j]."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.register_buffer("offsets", torch.tensor([0, *torch.tensor(LEVELS).cumsum(0)[:-1].tolist()]))
        self.emb = nn.Embedding(sum(LEVELS), 4)
        self.head = nn.Linear(4 * len(LEVELS), 2)

    def forward(self, x_cat):
        return self.head(self.emb(x_cat + self.offsets).flatten(1))


def _probe(dtype: torch.dtype = torch.long, n: int = 64) -> Probe:
    g = torch.Generator().manual_seed(1)
    codes = torch.stack([torch.randint(0, k, (n,), generator=g) for k in LEVELS], 1).to(dtype)
    return Probe(codes, torch.randint(0, 2, (n,), generator=g))


@pytest.mark.parametrize(("model", "dtype", "named"), [
    (_Cast, torch.int32, {"cat.0": 0, "cat.1": 1, "cat.2": 2}),
    (_Offsets, torch.long, {"emb from 0": 0, "emb from 3": 1, "emb from 8": 2}),
])
def test_codes_the_model_computes_its_indices_from_are_ranked_by_column(model, dtype, named):
    net, probe = model().eval(), _probe(dtype)
    assert code_columns(net, probe) == named
    result = InputEffectAudit(baseline=0, ace_values=None).run(net, probe)
    assert "top_tokens" not in result.tables  # was there, code 1 of column 0 pooled with code 1 of columns 1 and 2
    x, effect = probe.first, result.maps["effect"].abs().double()
    for r in result.tables["top_codes"]:
        held = x[:, r["column"]] == r["code"]
        assert r["mean_abs_effect"] == pytest.approx(float(effect[held, r["column"]].mean()), abs=1e-9)
    with pytest.raises(ValueError, match="token_pool='position'"):  # was accepted: another column's codes drawn
        CaptumBaseline(methods=("FeatureAblation",), baseline=0).validate(net, probe)


def test_token_ids_shifted_by_one_constant_are_no_codes():
    class Shifted(nn.Module):  # ids read from 1 (0 kept for padding): one vocabulary, no columns
        def __init__(self) -> None:
            super().__init__()
            self.emb, self.head = nn.Embedding(12, 2), nn.Linear(2, 1)

        def forward(self, x):
            return self.head(self.emb(x + 1).mean(1))

    ids = torch.randint(0, 10, (64, 6), generator=torch.Generator().manual_seed(0))
    assert code_columns(Shifted(), Probe(ids)) == {}


def test_codes_are_detected_once_per_model_and_probe():
    net, probe = _Offsets().eval(), _probe()
    calls = []
    net.emb.register_forward_pre_hook(lambda m, a: calls.append(a[0].shape[0]))
    first = code_columns(net, probe)
    assert code_columns(net, probe) == first and calls == [16, 64]  # was [16, 16]: a pass at every audit run (and None)
    net.extra = nn.Linear(2, 2)  # the model's modules changed: read again
    assert code_columns(net, probe) == first and calls == [16, 64, 16, 64]


def test_codes_are_detected_once_per_fit(tmp_path, monkeypatch):
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader, TensorDataset

    from lightning_causal.audits import category_codes
    from lightning_causal.callbacks.audit import CausalAuditCallback
    from tests.helpers.lightning import trainer

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = _Offsets()

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, _):
            return nn.functional.cross_entropy(self(batch[0]), batch[1])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    reads = []
    read = category_codes._read
    monkeypatch.setattr(category_codes, "_read", lambda model, probe, rows: reads.append(min(rows, len(probe))) or read(model, probe, rows))
    probe = _probe()
    data = DataLoader(TensorDataset(probe.first, probe.labels), batch_size=32)
    callback = CausalAuditCallback([InputEffectAudit(baseline=0, ace_values=None)], probe_size=64, report_dir=tmp_path / "r")
    trainer(tmp_path, max_epochs=3, callbacks=[callback]).fit(Module(), data, data)
    assert callback.audited_epochs == [0, 1, 2]
    # the dry run's 2 rows, then 64 drawn from their values (a probe of fewer rows, mends_s45d); the probe once for 3
    # runs, 64 rows where indices are computed
    assert reads == [2, 64, 16, 64]
