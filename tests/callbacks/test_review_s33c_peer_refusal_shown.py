"""Under DDP with ``on_error="warn"``, an audit refused in one process only (the stacked-rows check on that process's
share of the intervened rows, a model that branches on its batch) is recorded as failed in every process, and process 0
says only ``PeerFailure('process(es) [1] failed ... (see their error)')``; process 1's own warning, which names the
refusal, was recorded by the callback's warnings collector and never shown (the collector shows rank 0's warnings only),
so no process said why (a 2-process gloo ``ddp_spawn`` fit, /tmp/review_s33c/ddp/ddp_refuse.py). Process 1 is played
here by one process whose collective answers for process 0 ("all ok")."""

import types
import warnings

import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit, Probe
from lightning_causal.callbacks.audit import CausalAuditCallback


class _Coupled(nn.Module):
    """Doubles a pass of more rows than the 8-sample probe: the intervened rows' passes branch on their batch."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.lin(x)
        return out * 2 if x.shape[0] > 8 else out


def _as_process_1(t: torch.Tensor) -> torch.Tensor:
    """The collective of process 1 of 2: process 0's status is "ok" in the same phase, its rows this process's."""
    other = t.clone()
    if t.dtype == torch.int64 and t.shape == (1, 2):
        other[0, 1] = 0
    return torch.stack([other, t])


def test_a_refusal_in_process_1_only_is_shown_in_process_1():
    probe = Probe(torch.randn(8, 4, generator=torch.Generator().manual_seed(0)), torch.arange(8) % 3)
    cb = CausalAuditCallback([InputEffectAudit(ace_values=None)], on_error="warn", max_batch_size=10)
    cb.probe = probe
    strategy = types.SimpleNamespace(all_gather=_as_process_1, root_device=torch.device("cpu"))
    trainer = types.SimpleNamespace(world_size=2, global_rank=1, is_global_zero=False, strategy=strategy,
                                    progress_bar_callback=None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = cb._audit_all(trainer, _Coupled().eval(), 0)
    assert [r.scalars for r in results] == [{"failed": 1.0}]
    said = [str(w.message) for w in caught if "failed at epoch 0 in process 1" in str(w.message)]
    assert len(said) == 1, [str(w.message)[:120] for w in caught]  # before: none (recorded, not shown)
    assert "StackedRowsError" in said[0] and "to give what they give alone" in said[0]
