"""Review of 06a3f674 (a LoRA layer merging in its forward by ``self.training`` kept across an audit by its bool
``merged`` flag): the rule keyed on the flag's name and type left every other LoRA of the same kind changed in silence,
``B @ A`` counted twice after one ``input_effects`` call (weights off by 2.81 here): a flag ``merged = 0`` (an int), a
merge counter, a string state, a buffer. An int flag is kept now as a bool one is; the values written anywhere else
below a module of the user's own are refused (``engine/param_writes.py``), naming the parameter and its module."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.callbacks._no_trace import no_trace
from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.param_writes import param_writes_refused, watched_params
from lightning_causal.causal.engine.state import audit_mode


class _Lora(nn.Module):
    """Merges ``B @ A`` into its frozen base in an eval-mode forward and takes it out in a train-mode one; its merge
    state held as ``kind`` says."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind, self.base = kind, nn.Linear(4, 8)
        self.base.requires_grad_(False)
        self.lora_A, self.lora_B = nn.Parameter(torch.randn(2, 4)), nn.Parameter(torch.randn(8, 2))
        if kind == "int":
            self.merged = 0
        elif kind == "counter":
            self.merge_count = 0
        elif kind == "string":
            self.state = "unmerged"
        else:
            self.register_buffer("last_eval", torch.tensor(False))

    def is_merged(self) -> bool:
        return {"int": lambda: self.merged == 1, "counter": lambda: self.merge_count % 2 == 1,
                "string": lambda: self.state == "merged", "buffer": lambda: bool(self.last_eval)}[self.kind]()

    def set_merged(self, merged: bool) -> None:
        if self.kind == "int":
            self.merged = int(merged)
        elif self.kind == "counter":
            self.merge_count += 1
        elif self.kind == "string":
            self.state = "merged" if merged else "unmerged"
        else:
            self.last_eval.fill_(merged)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        delta = (self.lora_B @ self.lora_A).detach()
        if self.training == self.is_merged():  # merge in eval mode, unmerge in train mode
            self.base.weight.data += -delta if self.training else delta
            self.set_merged(not self.training)
        out = self.base(x)
        return out if self.is_merged() else out + x @ self.lora_A.T @ self.lora_B.T


def _model(kind: str, train: bool) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(_Lora(kind), nn.ReLU(), nn.Linear(8, 3)).train(train)


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(model: nn.Module, state: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


X = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("train", [True, False])
def test_an_int_merged_flag_is_kept_as_a_bool_one(train):
    model = _model("int", train)
    state = _state(model)
    input_effects(model, X, target=0)
    assert _same(model, state) and model[0].merged == 0 and model.training is train
    with torch.no_grad():
        assert torch.equal(model(X), _model("int", train)(X))  # the function the user had


@pytest.mark.parametrize("kind", ["counter", "string", "buffer"])
def test_a_merge_state_held_otherwise_is_refused_naming_the_parameter(kind):
    model = _model(kind, True)
    with pytest.raises(ValueError, match=r"wrote `0\.base\.weight` \(below `_Lora`\).*`merged`"):
        input_effects(model, X, target=0)
    model = _model(kind, True)
    with pytest.raises(ValueError, match=r"wrote `0\.base\.weight` \(below `_Lora`\)"), no_trace(model), \
            torch.no_grad():
        model.eval()(X)


def test_the_outermost_block_watches_and_an_error_inside_is_not_masked():
    model = _model("counter", True)
    with pytest.raises(ValueError, match="wrote") as caught, no_trace(model), audit_mode(model):
        model(X)  # the inner audit_mode reads nothing: one refusal, by the outer block, after it closed
    assert "during the audit's passes" in str(caught.value)
    with pytest.raises(KeyError, match="mine"), param_writes_refused(model.eval()):
        model(X)
        raise KeyError("mine")


def test_a_model_of_library_modules_is_not_read():
    assert watched_params(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))) == {}
    model = _model("int", False)
    assert sorted(watched_params(model)) == ["0.base.bias", "0.base.weight", "0.lora_A", "0.lora_B"]
    half = nn.Sequential(_Lora("int")).half()  # half-precision bits read two by two, one value changed is seen
    with pytest.raises(ValueError, match="wrote `0.lora_A`"), param_writes_refused(half), torch.no_grad():
        half[0].lora_A.view(torch.int16).view(-1)[3] += 1  # one ulp of one value


def test_an_unrelated_merged_flag_copies_no_whole_model():
    """A model of the user's holding `merged` for its own reasons (its splits merged) had every parameter below it
    copied at each audit (80 MiB for 21M parameters); a LoRA layer's own and its wrapped layer's are copied."""
    from lightning_causal.causal.engine.init_writes import uninitialised_params

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body, self.merged = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)), False

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x)

    assert uninitialised_params(Net()) == []
    lora = nn.Sequential(nn.Sequential(_Lora("int")))  # deeper in the model: its own and its base's, nothing else
    assert {id(p) for p in uninitialised_params(lora)} == {id(p) for p in lora[0][0].parameters()}
