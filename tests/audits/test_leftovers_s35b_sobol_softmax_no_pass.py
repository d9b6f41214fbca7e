"""SobolAudit ran a pass of 64 probe rows after the indices, only for its warnings of a softmax over outputs that are
no logits (independent scores, an embedding, a continuous distribution's mean), and, with ``output=``, one more pass of
one row to read what the tensor explained is. The analysis runs thousands of rows through the model already: the
explained class's function (``ClassProbability``) keeps the outputs of the first 64 rows it ran and its first call's
return value, and the warnings read those. The model runs no pass after the indices, and the warnings are those of
before."""

import warnings

import pytest
import torch
from torch import nn
from torch.distributions import Normal

import lightning_causal.audits.sobol as sobol_module
from lightning_causal import SobolAudit
from lightning_causal.audits import Probe


class _Policy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.mu, self.sd = nn.Linear(4, 2), nn.Linear(4, 2)

    def forward(self, obs: torch.Tensor):
        return {"dist": Normal(self.mu(obs), nn.functional.softplus(self.sd(obs)) + 1e-3), "value": obs.sum(1)}


class _Scores(nn.Module):  # a detector's best score per class: sigmoids, no logits
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.head(x).sigmoid()
        return torch.where(p > 0.4, p, torch.zeros_like(p))


def _run(model: nn.Module, monkeypatch: pytest.MonkeyPatch, **kwargs) -> tuple[int, list[str]]:
    """The model's passes after the analysis' indices (``sobol_indices``) within ``SobolAudit._analyse``, and the
    softmax warnings."""
    after, calls = [False], [0]
    indices, analyse = sobol_module.sobol_indices, sobol_module.SobolAudit._analyse

    def indices_then(*args, **kw):
        result = indices(*args, **kw)
        after[0] = True
        return result

    def analyse_then(self, *args, **kw):
        try:
            return analyse(self, *args, **kw)
        finally:
            after[0] = False

    monkeypatch.setattr(sobol_module, "sobol_indices", indices_then)
    monkeypatch.setattr(sobol_module.SobolAudit, "_analyse", analyse_then)
    handle = model.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + after[0]))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            SobolAudit(n=64, n_bootstrap=2, target=0, seed=0, **kwargs).run(
                model, Probe(torch.randn(16, 4, generator=torch.Generator().manual_seed(1))))
    finally:
        handle.remove()
    return calls[0], [str(w.message) for w in caught if "softmax over the model's outputs" in str(w.message)]


def test_the_softmax_check_of_a_continuous_distribution_runs_no_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    calls, said = _run(_Policy(), monkeypatch, output=lambda out: out["dist"].mean)
    assert calls == 0 and len(said) == 1 and "the Normal's mean" in said[0]
    assert _run(_Policy(), monkeypatch, output=lambda out: out["dist"].mean, probability=False)[1] == []


def test_the_softmax_check_of_independent_scores_runs_no_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    calls, said = _run(_Scores(), monkeypatch)
    assert calls == 0 and len(said) == 1 and "lies in [0, 1]" in said[0]
    assert _run(_Scores(), monkeypatch, probability=False)[1] == [] and _run(_Scores().head, monkeypatch)[1] == []


def test_the_counterfactual_audit_reads_the_distribution_and_the_padding_without_more_passes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """CounterfactualAudit's check of a continuous distribution ran a pass of the probe's first row beside the pass of
    the probe it had just run, and it read the probe's padding for categorical/integer groups where none was set."""
    import lightning_causal.audits.counterfactual as counterfactual
    import lightning_causal.audits.task_warnings as task_warnings
    from lightning_causal import CounterfactualAudit

    counted: dict[str, int] = {"first_row": 0, "padding": 0}

    def counting(module: object, name: str, key: str) -> None:
        real = getattr(module, name)

        def call(*args, **kwargs):
            counted[key] += 1
            return real(*args, **kwargs)
        monkeypatch.setattr(module, name, call)

    counting(task_warnings, "_first_row", "first_row")
    counting(counterfactual, "padding_positions", "padding")
    probe = Probe(torch.randn(16, 4, generator=torch.Generator().manual_seed(1)))
    with pytest.raises(ValueError, match=r"the Normal's mean, a continuous distribution"):
        CounterfactualAudit(towards="runner_up", output=lambda out: out["dist"].mean).validate(_Policy(), probe)
    CounterfactualAudit(towards="runner_up", output=lambda out: out["dist"].scale.log()).validate(_Policy(), probe)
    CounterfactualAudit(towards="runner_up").validate(nn.Linear(4, 3), probe)
    assert counted == {"first_row": 0, "padding": 0}
    CounterfactualAudit(towards="runner_up", integer=[0]).validate(nn.Linear(4, 3), Probe(probe.inputs.round()))
    assert counted["padding"] == 1
