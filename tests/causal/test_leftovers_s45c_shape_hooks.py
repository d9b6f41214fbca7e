"""The probe check (``check_samples_independent``) records each module's input shape (``_InputShapes``: a forward
pre-hook on every module) only to tell a model that routes its rows, which only a reversed pass of a probe of 3 rows
or more can follow (not of 2 rows, not with ``one_row``, and not on the reversed pass itself). It hooked every module on
the first two passes in every case (re-read of session 44's change): the hooks counted here, pass by pass."""

import torch
from torch import nn

from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.sample_independence import check_samples_independent
from tests.causal.test_mends_s43a_capacity_routing import _Capacity

_HOOKS: list[int] = []  # outside the model: the check puts the model's own attributes back between its passes


class _Counted(nn.Module):
    """Wraps ``inner``; records, at each call, how many forward pre-hooks its first layer holds."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = next(m for m in self.inner.modules() if not list(m.children()))
        _HOOKS.append(len(first._forward_pre_hooks))
        return self.inner(x)


def _passes(model: nn.Module, x: torch.Tensor, **kwargs) -> list[int]:
    counted = _Counted(model).eval()
    out = counted(x)
    _HOOKS.clear()
    try:
        check_samples_independent(Forward(counted, num_samples=len(x)), (x,), out, "T", **kwargs)
    except ValueError:
        pass
    assert all(not m._forward_pre_hooks for m in counted.modules())  # none left behind
    return list(_HOOKS)


def test_no_module_is_hooked_where_no_reversed_pass_can_follow():
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    assert _passes(mlp, torch.randn(2, 3)) == [0]  # 2 rows: row 0 twice, one pass, no reversed pass
    assert _passes(mlp, torch.randn(8, 3), one_row=True) == [0, 0]  # every row alone: no reversed pass
    assert _passes(mlp, torch.randn(8, 3)) == [1, 1]  # rows 0, 1 and 4, 7: read for routes(), no reversed pass after


def test_the_reversed_pass_itself_is_not_hooked_and_routing_is_still_found():
    n = 3
    x = torch.full((n, 2), 0.1) + torch.arange(float(n))[:, None] / 100
    x[:, 0] = 1.0  # every row routed to expert 0: the rows past its capacity are dropped
    hooks = _passes(_Capacity(0.1), x)  # rows 0 and 1 read; the whole probe reversed (routes() never reads it), then
    assert hooks[:2] == [1, 0] and sum(hooks) == 1, hooks  # the refusal's own passes
