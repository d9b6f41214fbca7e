"""SobolAudit's n_bootstrap: 1 refused where the audit is built (as sobol_indices refuses it), and
without resamples (0) the TensorBoard figure must not claim intervals it does not draw."""

import pytest
import torch
from torch import nn

from lightning_causal.audits import Probe, SobolAudit


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2))


def test_one_bootstrap_resample_is_refused_at_construction():
    """Before: accepted, then the first audit (the callback's dry run) failed in sobol_indices."""
    with pytest.raises(ValueError, match=r"`n_bootstrap` to be 0 \(no intervals\) or an int >= 2 but got 1"):
        SobolAudit(n=64, n_bootstrap=1)
    assert SobolAudit(n=64, n_bootstrap=0).n_bootstrap == 0 and SobolAudit(n=64, n_bootstrap=2).n_bootstrap == 2


class _Writer:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _titles(result, monkeypatch) -> dict[str, str]:
    pytest.importorskip("matplotlib")
    from lightning_causal.reporting.tensorboard import TensorBoardRenderer

    titles: dict[str, str] = {}
    monkeypatch.setattr(TensorBoardRenderer, "_figure",
                        staticmethod(lambda writer, tag, fig, step: titles.__setitem__(tag, fig._suptitle.get_text())))
    TensorBoardRenderer().render(_Writer(), 0, [result], None)
    return titles


def test_the_figure_without_bootstrap_does_not_claim_intervals(monkeypatch):
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(1))
    bare = SobolAudit(n=64, n_bootstrap=0).run(_model(), Probe(x))
    assert all(v != v for row in bare.tables["indices"] for v in row["S_ci"] + row["ST_ci"])  # NaN: none drawn
    title = _titles(bare, monkeypatch)["causal/sobol/intervals/indices"].replace("\n", " ")
    assert "95% intervals" not in title and "no intervals" in title, title  # before: "..., 95% intervals"
    with_ci = SobolAudit(n=64, n_bootstrap=20).run(_model(), Probe(x))
    assert "95% intervals" in _titles(with_ci, monkeypatch)["causal/sobol/intervals/indices"].replace("\n", " ")
