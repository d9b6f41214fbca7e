"""``is_norm_layer`` cached its reading of a scripted module's graph (does its forward run ``batch_norm``?) by the type's
qualified name, which a module loaded from a file (``torch.jit.load``) keeps as the scripting process named it: two
files of two processes holding different classes of one name (``Block``: a BatchNorm subclass without running
statistics in one, a module holding a ``track_running_stats`` flag beside a ``Linear`` in the other) shared
``__torch__.Block``'s answer, so whichever was asked first answered for both: ``batch_statistic_norms`` named the plain
model's ``Block`` (and ``CausalRepairModule`` ran its task pass alone, as for a BatchNorm in training) or not the
BatchNorm's, whose refusal by the estimators then blamed "control flow on a batch statistic" instead of the layer and
its ``track_running_stats=False``. The answer is now kept per module, as ``traced_batch_norm_in_training``'s.

Both files are written here, in one process, which names the second ``Block`` ``___torch_mangle_<n>.Block``; the second
file is given the first's name as another process would have written it (:func:`_named_as`), which costs 0.1 s where a
process of its own to write it took 5 to 11 s (importing torch)."""

from __future__ import annotations

import io
import zipfile

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.kept_attributes import batch_statistic_norms
from lightning_causal.repair.objective import batch_statistics_in_use


def _norm_model() -> nn.Module:
    class Block(nn.BatchNorm1d):
        pass

    return nn.Sequential(nn.Linear(3, 3), Block(3, track_running_stats=False))


def _plain_model() -> nn.Module:
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.track_running_stats = False
            self.lin = nn.Linear(3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lin(x)

    return nn.Sequential(nn.Linear(3, 3), Block())


def _block_type(model: torch.jit.ScriptModule) -> str:
    """The qualified name of the scripted ``model``'s ``Block``'s type."""
    return model._modules["1"]._c._type().qualified_name()


def _named_as(model: torch.jit.ScriptModule, name: str) -> io.BytesIO:
    """``model`` saved (``torch.jit.save``) with its ``Block``'s type named ``name`` (the module path the type is saved
    under, its code and the pickled objects' references renamed; its debug records, which name the source, left out)."""
    old, new = _block_type(model).rsplit(".", 1)[0], name.rsplit(".", 1)[0]
    saved, out = io.BytesIO(), io.BytesIO()
    torch.jit.save(model, saved)
    with zipfile.ZipFile(saved) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if not info.filename.endswith(".debug_pkl"):
                body = src.read(info)
                for a, b in ((f"{old}.", f"{new}."), (f"{old}\n", f"{new}\n")):  # code; the pickle's GLOBAL references
                    body = body.replace(a.encode(), b.encode())
                dst.writestr(info.filename.replace(old.replace(".", "/") + ".py", new.replace(".", "/") + ".py"), body)
    out.seek(0)
    return out


@pytest.fixture(scope="module")
def files() -> tuple[bytes, bytes]:
    """The BatchNorm ``Block``'s model and the plain ``Block``'s, saved as two processes would (both types named as the
    BatchNorm's, ``__torch__.<this module>.Block``)."""
    norm, plain = torch.jit.script(_norm_model()), torch.jit.script(_plain_model())
    assert _block_type(norm) != _block_type(plain)  # one process mangles the second name
    saved = io.BytesIO()
    torch.jit.save(norm, saved)
    return saved.getvalue(), _named_as(plain, _block_type(norm)).getvalue()


def _load(files: tuple[bytes, bytes]) -> tuple[torch.jit.ScriptModule, torch.jit.ScriptModule]:
    return tuple(torch.jit.load(io.BytesIO(f)) for f in files)


@pytest.mark.parametrize("norm_first", [True, False])
def test_same_named_classes_of_two_files_are_each_told_by_their_own_graph(files, norm_first: bool) -> None:
    norm, plain = _load(files)
    assert _block_type(norm) == _block_type(plain)
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(plain(x), plain._modules["1"].lin(plain._modules["0"](x)))  # the plain Block's graph, renamed
    if norm_first:
        assert batch_statistic_norms(norm) == ["1"]
        assert batch_statistic_norms(plain) == []  # before: ['1'], the BatchNorm's answer
    else:
        assert batch_statistic_norms(plain) == []
        assert batch_statistic_norms(norm) == ["1"]  # before: [], the plain Block's answer


def test_the_refusal_names_the_batchnorm_and_the_repair_runs_the_plain_model_fused(files) -> None:
    norm, plain = _load(files)
    assert not batch_statistics_in_use(plain.train())  # before, asked first of the BatchNorm: True (run alone, slower)
    assert batch_statistics_in_use(norm.train())
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"normalisation layer\(s\) \['1'\] have track_running_stats=False"):
        input_effects(norm.eval(), x, target=0)  # before, the plain Block's answer: "its forward depends on the batch"
    assert input_effects(plain.eval(), x, target=0).shape == (8, 3)
