"""Trial "multitask": a model whose forward returns its heads in a dataclass or a namedtuple, explained
without `output=`. The refusal named a mapping's keys but only the type of a dataclass ('got Out') and
the item types of a namedtuple, so the user had to read the model to find what `output=` could select;
a misspelt field named nothing either. Both now name the fields, and the refusal gives the first as an example."""

from collections import namedtuple
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit, Probe
from lightning_causal.causal import input_effects


@dataclass
class HeadsOut:
    cls: torch.Tensor
    reg: torch.Tensor


HeadsTuple = namedtuple("HeadsTuple", "cls reg")


class Heads(nn.Module):
    def __init__(self, kind: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body, self.cls, self.reg = nn.Linear(4, 8), nn.Linear(8, 3), nn.Linear(8, 1)
        self.kind = kind

    def forward(self, x):
        h = torch.tanh(self.body(x))
        return (HeadsOut if self.kind == "dataclass" else HeadsTuple)(self.cls(h), self.reg(h))


X = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("kind", ["dataclass", "namedtuple"])
def test_a_forgotten_output_names_the_fields(kind):
    model = Heads(kind).eval()
    with pytest.raises(TypeError, match=r"\['cls', 'reg'\].*pass `output=`.*e\.g\. `output='cls'`") as err:
        input_effects(model, X)
    assert ("training mode only" in str(err.value)) is False  # heads in a namedtuple are no auxiliary-head tuple
    with pytest.raises(Exception, match=r"\['cls', 'reg'\]"):
        InputEffectAudit(ace_values=None).run(model, Probe(X))
    with pytest.raises(TypeError, match=r"select a tensor from .*\['cls', 'reg'\]"):
        input_effects(model, X, output="regr")


@pytest.mark.parametrize("kind", ["dataclass", "namedtuple"])
def test_a_field_is_a_key(kind):
    model = Heads(kind).eval()
    with torch.no_grad():
        f0 = model(X).reg[:, 0]
        ref = torch.stack([f0 - model(X.index_fill(1, torch.tensor([g]), 0.0)).reg[:, 0] for g in range(4)], 1)
    torch.testing.assert_close(input_effects(model, X, output="reg", target=0), ref)
