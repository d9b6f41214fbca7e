"""Review of 74e54b21 (float32_exact inside audit_mode).

Under ``torch.set_float32_matmul_precision("high")`` (what Lightning advises on a GPU with tensor cores) the audits set
the cuBLAS matmuls' own ``fp32_precision`` to ``"ieee"`` while the global setting stayed ``"high"``: torch refuses to
answer ``torch.backends.cuda.matmul.allow_tf32`` in that mix (RuntimeError naming a mix of the legacy and new APIs),
so code reading it inside an audit failed. And a matmul's ``fp32_precision`` of ``"none"`` takes its backend's
(``torch.backends.cudnn.fp32_precision = "tf32"`` makes cuBLAS's TF32) and was left so, the audit's products lowered.
Now the global setting goes to ``"highest"`` inside too, every operation's own to ``"ieee"``, all put back exactly.
"""

import pytest
import torch
from torch import nn

from lightning_causal.causal.engine.state import audit_mode, float32_exact

pytestmark = pytest.mark.skipif(not hasattr(torch.backends.mkldnn, "matmul"),
                                reason="the backends' own fp32_precision is new in torch 2.9")

_SITES = [("generic", "all")] + [(b, o) for b in ("mkldnn", "cuda") for o in ("all", "matmul", "conv", "rnn")]


def _global():
    try:
        return torch.get_float32_matmul_precision()
    except RuntimeError:  # the backends' own set to a state the global setting cannot name
        return None


def _state():
    return _global(), [torch._C._get_fp32_precision_getter(b, o) for b, o in _SITES]


@pytest.fixture
def restore():
    before = _state()
    yield
    torch.set_float32_matmul_precision(before[0] or "highest")
    for (backend, op), value in zip(_SITES, before[1]):
        torch._C._set_fp32_precision_setter(backend, op, value)


@pytest.mark.parametrize("setting", ["high", "medium"])
def test_the_global_setting_agrees_with_the_backends_inside_an_audit(restore, setting):
    torch.set_float32_matmul_precision(setting)
    before = _state()
    with audit_mode(nn.Linear(2, 2)):
        assert torch.backends.cuda.matmul.allow_tf32 is False  # raised: a mix of the legacy and new APIs
        assert torch.get_float32_matmul_precision() == "highest"
    assert _state() == before


def test_a_matmul_that_takes_its_backends_tf32_runs_at_full_precision_inside(restore):
    torch.backends.cudnn.fp32_precision = "tf32"  # cuda's own: cuBLAS's "none" takes it
    before = _state()
    with float32_exact():
        assert torch.backends.cuda.matmul.fp32_precision == "ieee"
        assert torch.backends.mkldnn.matmul.fp32_precision == "ieee"
    assert _state() == before


def test_nested_blocks_and_interrupts_put_back_exactly_what_the_outermost_found(restore):
    torch.set_float32_matmul_precision("medium")
    torch.backends.cuda.matmul.fp32_precision = "ieee"  # a user's own mix of the two APIs
    before = _state()
    with float32_exact():
        inside = _state()
        with float32_exact():
            pass
        assert _state() == inside  # the inner block's exit puts nothing back early
        with pytest.raises(KeyboardInterrupt), float32_exact():
            raise KeyboardInterrupt
        assert _state() == inside
    assert _state() == before
