"""Review of the change (newuser31 trial's note): the core imported ``torch._dynamo`` at its first call
(``eager._optimized_type`` from ``resolve_module``/``is_compiled``, and ``torch.compiler.set_stance`` in
``force_eager`` under every ``audit_mode``), about 2 s of a process that never compiles. No model is
compiled without ``torch._dynamo`` imported (``torch.compile`` imports it), so neither is needed then.
Here ``torch._dynamo`` is hidden from ``sys.modules`` and any import of it is recorded and refused."""

import sys

import torch
from torch import nn

from lightning_causal import causal as C
from lightning_causal.causal.engine import eager


def test_the_core_runs_a_model_without_importing_torch_dynamo(no_dynamo):
    # not torch.manual_seed: it is wrapped by torch._disable_dynamo, which imports torch._dynamo at its first call (the
    # test failed after another test of a process where it had not been called yet); the relation holds for any weights
    g = torch.Generator().manual_seed(0)
    m = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).eval()
    x = torch.randn(5, 3, generator=g)
    e = C.input_effects(m, x, target=0)
    torch.testing.assert_close(e[:, 0], m(x)[:, 0] - m(x * torch.tensor([0.0, 1.0, 1.0]))[:, 0])  # do(x_0 := 0)
    with C.capture(m, ["0"]) as seen:
        m(x)
    torch.testing.assert_close(seen["0"], m[0](x))
    assert not eager.is_compiled(m) and eager.eager_module(m) is m and list(eager.named_modules(m)) == ["", "0", "1", "2"]
    assert no_dynamo.tried == []


def test_a_compiled_model_is_still_seen_as_its_eager_original():
    m = nn.Sequential(nn.Linear(3, 2))
    compiled = torch.compile(m)
    assert "torch._dynamo" in sys.modules and eager.is_compiled(compiled) and eager.eager_module(compiled) is m
