"""SobolAudit logs S/<name> and ST/<name> for its top groups: two feature names that make one tag
('capital gain' and 'capital_gain', or a name given twice) overwrote one group's series with the
other's, silently (the top group, S = 0.90, vanished behind S/capital_gain = 0.002)."""

import pytest
import torch
from torch import nn

from lightning_causal.audits import Probe, SobolAudit


@pytest.mark.parametrize("names", [["capital gain", "capital_gain", "hours"], ["a", "b", "a"], ["x/y", "x y", "z"]])
def test_names_that_make_one_tag_are_refused(names):
    with pytest.raises(ValueError, match=r"`feature_names` to name every group apart but .* both give the scalar tags"):
        SobolAudit(n=64, feature_names=names)


def test_every_top_group_keeps_its_own_scalar():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2))
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(1))
    r = SobolAudit(n=64, n_bootstrap=0, feature_names=["capital gain", "capital loss", "hours/week"]).run(model, Probe(x))
    first = {row["feature"]: row["S"] for row in r.tables["indices"]}
    for name, tag in (("capital gain", "capital_gain"), ("capital loss", "capital_loss"), ("hours/week", "hours_week")):
        assert r.scalars[f"S/{tag}"] == pytest.approx(first[name], abs=1e-6)


def test_backdoor_class_names_that_make_one_tag_are_refused():
    """BackdoorAudit logs ``anomaly_index/<class name>`` per class (names made tag-safe): two class
    names that give one tag wrote both classes' indices to one series, the later overwriting the
    earlier, silently (found by the Sobol' trial beside the same fault in SobolAudit)."""
    from lightning_causal.audits import BackdoorAudit

    with pytest.raises(ValueError, match=r"`class_names` to name every class apart but 'hot dog' and 'hot_dog' both give "
                                         r"the scalar tag anomaly_index/hot_dog"):
        BackdoorAudit(class_names=["cat", "hot dog", "hot_dog"])
    assert BackdoorAudit(class_names=["cat", "hot dog"]).class_names == ["cat", "hot dog"]
