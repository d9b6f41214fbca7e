"""Review of 10884f20 / 3238026f: a model traced (``torch.jit.trace``) with its BatchNorm in training mode, saved and
loaded back (``torch.jit.load``, the way a traced model is shipped), was neither refused by the estimators nor run
unfused by ``CausalRepairModule``: ``traced_batch_norm_in_training`` read only ``TracedModule``s, and a loaded one is a
``RecursiveScriptModule``, though its graph still runs ``batch_norm`` with ``training`` a constant ``True`` (in eval
mode, a sample's output moved by 0.86 with its batch). Its answer was cached by the type's qualified name, which a loaded
module keeps as its tracing process named it: a train-traced file and an eval-traced one from two processes share it
(``__torch__.torch.nn.modules.batchnorm.BatchNorm1d``), so it is now cached by the module."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.kept_attributes import traced_training_norms
from lightning_causal.repair.objective import batch_statistics_in_use

_WRITE = """
import sys, warnings, torch
from torch import nn
warnings.simplefilter("ignore")
torch.manual_seed(0)
net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
x = torch.randn(16, 3)
torch.jit.save(torch.jit.trace(net.train(), x), sys.argv[1])
torch._C._jit_clear_class_registry()  # the next trace names its types as a fresh process would: as the first
torch.jit.save(torch.jit.trace(net.eval(), x), sys.argv[2])
"""


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.jit.ScriptModule, torch.jit.ScriptModule]:
    """A model traced in training mode and the same traced in eval mode, each saved with its types named alike."""
    folder = Path(tmp_path_factory.mktemp("traced"))
    train, eval_ = folder / "train.pt", folder / "eval.pt"
    subprocess.run([sys.executable, "-c", _WRITE, str(train), str(eval_)], check=True)
    return torch.jit.load(str(train)), torch.jit.load(str(eval_))


def test_a_loaded_model_traced_in_training_is_told_from_one_traced_in_eval_mode(loaded) -> None:
    in_train, in_eval = loaded
    assert in_train._modules["1"]._c._type().qualified_name() == in_eval._modules["1"]._c._type().qualified_name()
    assert traced_training_norms(in_train) == ["1"]  # before: []
    assert traced_training_norms(in_eval) == []
    assert traced_training_norms(in_train) == ["1"]  # read again: each its own answer, whichever came first
    assert batch_statistics_in_use(in_train.train()) and not batch_statistics_in_use(in_eval.eval())


def test_the_estimators_refuse_a_loaded_model_traced_in_training_naming_its_layer(loaded) -> None:
    in_train, in_eval = loaded
    x = torch.randn(16, 3, generator=torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match=r"its BatchNorm layer\(s\) \['1'\] were traced \(torch.jit.trace\) in training mode"):
        input_effects(in_train.eval(), x, target=0)  # before: effects mixed over the probe's rows, silently
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        effects = input_effects(in_eval.eval(), x, target=0)
    assert effects.shape == (16, 3) and torch.isfinite(effects).all()
