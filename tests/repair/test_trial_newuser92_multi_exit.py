"""newuser92 trial: a multi-exit network (a classifier head after each block) returns the list of its exits' logits in
training mode and, in eval mode, each sample's logits at the first exit confident enough. Without `output=` the
refusal of the list suggested `output=0` "one audit per output" and, for both modes,
`output=lambda out: out[0] if isinstance(out, tuple) else out`, which returns a list as it is (a TypeError). Written
for lists, `out[0]` is the first exit only: a BackdoorSuppressionTerm on it left the digits network's eval-mode attack
success rate at 0.68 (exit 0 at 0.03, exits 1 and 2 at 0.95 and 0.96), where one term per exit brought it to 0.03
(/tmp/newuser92/exp7.py). The refusals now say that same-shaped tensors of a tuple or list are an output each, that
`output=0` explains or repairs the first only, and name the selection of exit k that works in both modes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.causal import Trigger, input_effects
from lightning_causal.causal.engine.forward import select_output
from lightning_causal.repair import BackdoorSuppressionTerm, CausalRepairModule


class MultiExit(nn.Module):
    """Three blocks, a head after each; training: the list of the heads' logits; eval: per row, the first head whose
    softmax confidence passes ``threshold`` (the last head otherwise)."""

    def __init__(self, threshold: float = 0.6) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(6, 6), nn.Tanh()) for _ in range(3))
        self.heads = nn.ModuleList(nn.Linear(6, 3) for _ in range(3))
        self.threshold = threshold

    def exits(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs, h = [], x
        for block, head in zip(self.blocks, self.heads):
            h = block(h)
            outs.append(head(h))
        return outs

    def forward(self, x: torch.Tensor):
        outs = self.exits(x)
        if self.training:
            return outs
        out = outs[-1]
        for o in reversed(outs[:-1]):
            out = torch.where(o.softmax(1).amax(1, keepdim=True) >= self.threshold, o, out)
        return out


class OneExit(nn.Module):
    def __init__(self, net: MultiExit, k: int) -> None:
        super().__init__()
        self.net, self.k = net, k

    def forward(self, x):
        return self.net.exits(x)[self.k]


class ExitsRepair(CausalRepairModule):
    """Training sums the exits' losses."""

    def task_step(self, batch, batch_idx):
        x, y = batch
        return sum(F.cross_entropy(o, y) for o in self.model(x))


X = torch.randn(8, 6, generator=torch.Generator().manual_seed(1))
Y = torch.arange(8) % 3


def _both_modes(message: str) -> str:
    found = re.search(r"`output=(lambda out: out\[0\] if [^`]*? else out)`", message)
    assert found, message
    return found.group(1)


def test_the_list_of_exits_is_refused_naming_one_output_per_exit():
    net = MultiExit().train()
    with pytest.raises(TypeError, match=r"got list of 3 items .*3 tensors of one shape \(8, 3\) are outputs of their own.*if they are a multi-exit network's "
                                        r"exits.*`output=0` explains or repairs the first only.*one repair term or audit "
                                        r"per exit, `output=lambda out: out\[k\] if isinstance\(out, \(tuple, list\)\)"):
        select_output(net(X))


def test_the_selection_of_both_modes_the_refusal_names_takes_a_list_too():
    net = MultiExit()
    with pytest.raises(TypeError) as err:
        select_output(net.train()(X))
    both = eval(_both_modes(str(err.value)))  # noqa: S307 - the message's own selection
    torch.testing.assert_close(select_output(net.train()(X), both), net.exits(X)[0])  # training: the list's first exit
    torch.testing.assert_close(select_output(net.eval()(X), both), net.eval()(X))  # eval: the one tensor as it is


def test_output_0_refused_in_eval_mode_says_it_is_the_first_exit_only():
    with pytest.raises(ValueError, match=r"took its row 0.*a multi-exit network's exits, a list of logits in training "
                                         r"mode, are an output each: `out\[0\]` is the first exit only"):
        input_effects(MultiExit().eval(), X, output=0)


def test_one_term_per_exit_penalises_each_exit_as_the_exit_alone():
    """The way out: a term per exit, each selecting exit k in training mode, is that exit's penalty."""
    net = MultiExit()
    trigger = Trigger(torch.tensor([1.0, 1.0, 0, 0, 0, 0]), 2.0, 0)
    terms = [BackdoorSuppressionTerm(trigger, distill_weight=0.0, output=lambda out, k=k: out[k] if isinstance(out, (tuple, list)) else out,
                                     name=f"exit{k}") for k in range(3)]
    module = ExitsRepair(net, terms, output=lambda out: out[-1] if isinstance(out, (tuple, list)) else out)
    net.train()
    _, logs = module.objective((X, Y), 0)
    for k in range(3):
        alone = BackdoorSuppressionTerm(trigger, distill_weight=0.0).loss(OneExit(net, k).train(), X, Y)
        torch.testing.assert_close(logs[f"repair/exit{k}"], alone)
    assert len({round(float(logs[f"repair/exit{k}"]), 6) for k in range(3)}) == 3  # three penalties, not one thrice


def test_the_recipe_runs_and_logs_a_penalty_per_exit(capsys, monkeypatch, tmp_path):
    page = Path(__file__).resolve().parents[2] / "docs" / "your_model.md"
    code = re.search(r"<!-- multi exit -->\s*```python\n(.*?)```", page.read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    ns: dict = {"__name__": "multi_exit_recipe"}
    exec(compile(code, "<your_model.md multi exit>", "exec"), ns)  # noqa: S102 - the docs' own example
    assert capsys.readouterr().out.splitlines()[-1] == "[True, True, True]"
    model = ns["repair"].model.model.train()
    outs = model(ns["x"])
    for k, term in enumerate(ns["terms"]):  # each term reads its exit in training mode
        torch.testing.assert_close(select_output(outs, term.output), outs[k])
