"""``is_norm_layer`` cached its reading of a scripted module's graph (does its forward run ``batch_norm``?) by the type's
qualified name, which a module loaded from a file (``torch.jit.load``) keeps as the scripting process named it: two
files of two processes holding different classes of one name (``Block``: a BatchNorm subclass without running
statistics in one, a module holding a ``track_running_stats`` flag beside a ``Linear`` in the other) shared
``__torch__.Block``'s answer, so whichever was asked first answered for both: ``batch_statistic_norms`` named the plain
model's ``Block`` (and ``CausalRepairModule`` ran its task pass alone, as for a BatchNorm in training) or not the
BatchNorm's, whose refusal by the estimators then blamed "control flow on a batch statistic" instead of the layer and
its ``track_running_stats=False``. The answer is now kept per module, as ``traced_batch_norm_in_training``'s."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.kept_attributes import batch_statistic_norms
from lightning_causal.repair.objective import batch_statistics_in_use

_WRITE = """
import sys, torch
from torch import nn

if sys.argv[1] == "norm":
    class Block(nn.BatchNorm1d):
        pass

    block = Block(3, track_running_stats=False)
else:
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.track_running_stats = False
            self.lin = nn.Linear(3, 3)

        def forward(self, x):
            return self.lin(x)

    block = Block()
torch.jit.save(torch.jit.script(nn.Sequential(nn.Linear(3, 3), block)), sys.argv[2])
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The BatchNorm ``Block``'s model and the plain ``Block``'s, each saved by a process of its own (both types named
    ``__torch__.Block``; one process would name the second ``___torch_mangle_0.Block``)."""
    folder = Path(tmp_path_factory.mktemp("scripted"))
    paths, write = (folder / "norm.pt", folder / "plain.pt"), folder / "write.py"  # a file: script reads the source
    write.write_text(_WRITE)
    runs = [subprocess.Popen([sys.executable, str(write), kind, str(path)]) for kind, path in zip(("norm", "plain"), paths)]
    assert [run.wait() for run in runs] == [0, 0]
    return paths


@pytest.mark.parametrize("norm_first", [True, False])
def test_same_named_classes_of_two_files_are_each_told_by_their_own_graph(files, norm_first: bool) -> None:
    norm, plain = (torch.jit.load(str(f)) for f in files)
    assert norm._modules["1"]._c._type().qualified_name() == plain._modules["1"]._c._type().qualified_name()
    if norm_first:
        assert batch_statistic_norms(norm) == ["1"]
        assert batch_statistic_norms(plain) == []  # before: ['1'], the BatchNorm's answer
    else:
        assert batch_statistic_norms(plain) == []
        assert batch_statistic_norms(norm) == ["1"]  # before: [], the plain Block's answer


def test_the_refusal_names_the_batchnorm_and_the_repair_runs_the_plain_model_fused(files) -> None:
    norm, plain = (torch.jit.load(str(f)) for f in files)
    assert not batch_statistics_in_use(plain.train())  # before, asked first of the BatchNorm: True (run alone, slower)
    assert batch_statistics_in_use(norm.train())
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"normalisation layer\(s\) \['1'\] have track_running_stats=False"):
        input_effects(norm.eval(), x, target=0)  # before, the plain Block's answer: "its forward depends on the batch"
    assert input_effects(plain.eval(), x, target=0).shape == (8, 3)
