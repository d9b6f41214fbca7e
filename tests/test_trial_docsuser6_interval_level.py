"""The level of the intervals named in the title of a TensorBoard interval figure (docsuser6 trial).

SobolAudit(confidence=0.999) drew its Sobol' bars under "..., 100% intervals" (the level formatted with
no decimals: 0.975 read 98%), a level no interval has; the title now gives the level as set."""

import pytest
import torch
from torch import nn

from lightning_causal.audits import Probe, SobolAudit


class _Writer:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _title(result, monkeypatch) -> str:
    pytest.importorskip("matplotlib")
    from lightning_causal.reporting.tensorboard import TensorBoardRenderer

    titles: dict[str, str] = {}
    monkeypatch.setattr(TensorBoardRenderer, "_figure",
                        staticmethod(lambda writer, tag, fig, step: titles.__setitem__(tag, fig._suptitle.get_text())))
    TensorBoardRenderer().render(_Writer(), 0, [result], None)
    return titles["causal/sobol/intervals/indices"].replace("\n", " ")


@pytest.mark.parametrize(("confidence", "said"), [(0.999, "99.9%"), (0.975, "97.5%"), (0.95, "95%"), (0.9, "90%")])
def test_the_interval_figure_names_the_level_as_set(confidence, said, monkeypatch):
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(1))
    r = SobolAudit(n=64, n_bootstrap=20, probability=False, confidence=confidence).run(model, Probe(x))
    title = _title(r, monkeypatch)
    assert f", {said} intervals" in title, title  # before: 0.999 -> "100% intervals", 0.975 -> "98% intervals"
