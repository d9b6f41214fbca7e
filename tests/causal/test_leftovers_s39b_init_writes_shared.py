"""Leftovers of session 38: ``init_writes_kept`` copied the parameters it keeps at every block, nested blocks too (an
estimator's ``audit_mode`` inside an audit's, inside the callback's ``no_trace``), where ``renorms_kept`` shares the
outermost block's copies: a LoRA model's parameters were copied once per nested block. The blocks inside share the
outer copy now, and still copy a parameter a pass wrote since the outer block began (its flag left set inside)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from lightning_causal.callbacks._no_trace import no_trace
from lightning_causal.causal.engine.init_writes import init_writes_kept
from lightning_causal.causal.engine.state import audit_mode

SHAPE = (7, 13)  # no other tensor of the model or of the blocks has it


class _Clones(TorchDispatchMode):
    """Counts the copies made of tensors of ``SHAPE``."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten.clone.default and tuple(args[0].shape) == SHAPE:
            self.count += 1
        return func(*args, **(kwargs or {}))


class _MergedInForward(nn.Module):
    """A LoRA layer that merges ``B @ A`` into its weight in an eval-mode forward (its ``merged`` flag False)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.weight = nn.Parameter(torch.randn(*SHAPE))
        self.lora_A, self.lora_B = nn.Parameter(torch.randn(2, SHAPE[1])), nn.Parameter(torch.randn(SHAPE[0], 2))
        self.merged = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training and not self.merged:
            self.weight.data += self.lora_B @ self.lora_A
            self.merged = True
        out = x @ self.weight.T
        return out if self.merged else out + x @ self.lora_A.T @ self.lora_B.T


def test_nested_blocks_copy_a_lora_model_once():
    model, x = _MergedInForward().train(), torch.randn(3, SHAPE[1])
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with _Clones() as clones:
        with no_trace(model), audit_mode(model), audit_mode(model), torch.no_grad():
            model(x)
    assert clones.count == 1
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items()) and not model.merged


class _ActNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.loc, self.initialized = nn.Parameter(torch.zeros(*SHAPE)), False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.initialized:
            self.loc.data.copy_(-x.mean(0))
            self.initialized = True
        return x + self.loc


def test_a_parameter_written_between_the_blocks_is_kept_as_the_inner_block_found_it():
    act, x = _ActNorm(), torch.randn(4, *SHAPE)
    with init_writes_kept(act):
        act(x)  # the outer block's own pass initialises it
        act.initialized = False  # a flag-less read: the inner block's pass would initialise it again
        with init_writes_kept(act):
            act(x + 1.0)
        assert torch.equal(act.loc, -x.mean(0))  # as the inner block found it, not the outer's zeros
    assert torch.equal(act.loc, torch.zeros(*SHAPE))
