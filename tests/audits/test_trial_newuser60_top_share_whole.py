"""``<layer>/top{k}_share`` of a head whose strongest units hold all the importance (the other units 0: the outputs of
classes a class-incremental model rules out with ``-inf``, whose ``do(unit := 0)`` changes nothing; newuser60 trial)
came out above 1 (``head/top10_share`` 1.0000001 on a digits MLP of 5 seen classes of 10): the part and the whole are
float32 sums in other orders. A share is at most 1."""

from __future__ import annotations

import torch

from lightning_causal.audits import AuditResult
from lightning_causal.audits.top_share import add_top_share
from lightning_causal.causal.engine.ranking import largest_k


def test_a_share_of_the_whole_is_one_not_above() -> None:
    imp = torch.tensor([0.2564433217048645, 0.0, 0.3748350739479065, 0.09018915891647339, 0.0, 0.3936424255371094, 0.0,
                        0.0, 0.32508331537246704, 0.0])  # float32: summed in index order vs largest first, 1 ulp apart
    values, _ = largest_k(imp, 10)
    assert float(values[:9].sum()) > float(imp.sum())  # the fault's cause: the part's sum passes the whole's
    result = AuditResult("units")
    add_top_share(result, "head/", values, float(imp.sum()), 10, 10)
    assert result.scalars["head/top10_share"] == 1.0  # 9 of 10 summed, the 10th 0: the whole
