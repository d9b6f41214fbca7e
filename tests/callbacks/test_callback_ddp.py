"""The audit callback's collectives under a distributed strategy, simulated by two threads."""

import copy
import types
import warnings

import pytest
import torch

from lightning_causal.audits import Audit, AuditResult, InputEffectAudit, Probe
from lightning_causal.callbacks.audit import CausalAuditCallback
from lightning_causal.causal.engine.batching import map_rows
from tests.causal.test_engine import _two_processes
from tests.helpers.models import MLP, seeded


class _FailsInOneProcess(Audit):
    """Fails in process ``rank`` only: while evaluating its rows, or before any collective."""

    def __init__(self, rank: int, where: str) -> None:
        super().__init__("flaky")
        self.rank, self.where, self.me = rank, where, None

    def run(self, model, probe, *, max_batch_size=None):
        if self.where == "before_rows" and self.me == self.rank:
            raise ValueError(f"boom in process {self.me}")

        def rows(idx):
            if self.me == self.rank:
                raise ValueError(f"boom in process {self.me}")
            return idx.double()
        return AuditResult(self.name, scalars={"sum": float(map_rows(40, 7, rows, torch.device("cpu")).sum())})


def _audits(rank, where):
    flaky = _FailsInOneProcess(1, where)
    flaky.me = rank
    # (no audit that traces the model with torch.fx: its patching of Module.__call__ is global, across threads)
    return [InputEffectAudit(ace_values=None), flaky, InputEffectAudit(torch.tensor([[0, 0, 1, 1, 2, 2]]), name="pairs")]


@pytest.mark.parametrize("where", ["rows", "before_rows"])
def test_an_audit_failing_in_one_process_fails_in_every_process_and_the_next_audits_are_exact(where):
    """``on_error="warn"`` under DDP: an audit that failed in process 1 only (an error in its share
    of the rows, e.g. out of memory there) aborted the whole fit in gloo ('Received data size doesn't
    match expected size': process 0 still gathered that audit's rows while process 1 gathered the next
    audit's); now both record it as failed and the next audits equal one process's results."""
    model = seeded(MLP(6, (8,), 3)).eval()
    x = torch.randn(16, 6, generator=torch.Generator().manual_seed(0))
    probe = Probe(x, torch.arange(16) % 3)
    single = {a.name: a.run(model, probe).scalars for a in _audits(0, "none")}

    def work(rank, gather):
        replica = copy.deepcopy(model)  # each process holds its own replica (the threads must not share hooks)
        cb = CausalAuditCallback(_audits(rank, where), on_error="warn")
        cb.probe = probe
        strategy = types.SimpleNamespace(all_gather=gather, root_device=torch.device("cpu"))
        trainer = types.SimpleNamespace(world_size=2, global_rank=rank, is_global_zero=rank == 0, strategy=strategy,
                                        progress_bar_callback=None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return {r.audit: r.scalars for r in cb._audit_all(trainer, replica, 0)}

    per_rank = _two_processes(work)
    for rank, got in enumerate(per_rank):
        assert isinstance(got, dict), (rank, got)
        assert got["flaky"] == {"failed": 1.0}, (rank, got["flaky"])
        for name in ("input_effect", "pairs"):
            assert got[name].keys() == single[name].keys()
            for key, value in single[name].items():
                assert got[name][key] == pytest.approx(value, rel=1e-6, abs=1e-9), (rank, name, key)


def test_audit_seconds_is_rank_zeros_value_on_every_process():
    """``causal/audit_seconds`` was each process's own wall time (rank 0 0.0180 s, rank 1 0.0266 s in a
    2-process fit), so ``AuditModelCheckpoint("causal/audit_seconds")`` kept a different
    ``best_model_score`` on each rank; every process now logs rank 0's value (the one in its report)."""
    model = seeded(MLP(6, (8,), 3)).eval()
    probe = Probe(torch.randn(2, 6, generator=torch.Generator().manual_seed(0)))  # 12 rows: too few to share out
    cb = CausalAuditCallback([InputEffectAudit(ace_values=None)], on_error="warn")
    cb.probe = probe
    rank_zero = 12.5  # what rank 0 measured
    strategy = types.SimpleNamespace(all_gather=lambda t: torch.stack([t, t]), root_device=torch.device("cpu"),
                                     broadcast=lambda obj, src=0: rank_zero if isinstance(obj, float) else obj)
    trainer = types.SimpleNamespace(world_size=2, global_rank=1, is_global_zero=False, strategy=strategy,
                                    progress_bar_callback=None, loggers=[])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cb._run(trainer, types.SimpleNamespace(audited_module=model), 0, "fit_end")
    assert cb.audited_epochs == [0]
    assert cb.last_scalars["causal/audit_seconds"] == rank_zero
