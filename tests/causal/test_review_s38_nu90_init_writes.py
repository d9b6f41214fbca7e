"""Review of 39d19b5e..5a2ac65b (normalizing flows): an audit of a flow never trained ran ActNorm's data-dependent
initialisation on its first pass, writing ``loc``/``scale`` through ``.data`` (in place, ``.data.copy_``, or a new
storage, ``.data = ...``); the flag was put back (a buffer, a bool attribute) and the parameters were not, so after
``audit_model``, an estimator or the callback's ``no_trace`` the flow held the probe's statistics beside a flag saying
it was not initialised (another ``state_dict()``, another checkpoint). They are now put back, the very tensors;
an initialised flow, and torch's own modules (BatchNorm's counter is a one-element buffer), are not copied."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal import InputEffectAudit, audit_model
from lightning_causal.callbacks._no_trace import no_trace
from lightning_causal.causal import column_mask, input_effects
from lightning_causal.causal.engine.init_writes import uninitialised_params
from lightning_causal.causal.engine.state import audit_mode

D = 4


class GlowActNorm(nn.Module):
    """Glow's: written in place, the flag a bool buffer or a plain attribute."""

    def __init__(self, flag: str) -> None:
        super().__init__()
        self.loc, self.log_scale = nn.Parameter(torch.zeros(D)), nn.Parameter(torch.zeros(D))
        self.flag = flag
        if flag == "buffer":
            self.register_buffer("initialized", torch.tensor(False))
        else:
            self.initialized = False

    def forward(self, x):
        if not self.initialized:
            with torch.no_grad():
                self.loc.data.copy_(-x.mean(0))
                self.log_scale.data.copy_(-x.std(0).add(1e-6).log())
            if self.flag == "buffer":
                self.initialized.fill_(True)
            else:
                self.initialized = True
        return (x + self.loc) * self.log_scale.exp(), self.log_scale.sum().expand(len(x))


class NfActNorm(nn.Module):
    """normflows': a float buffer, the parameters' storage replaced (``.data = ...``), the buffer reassigned."""

    def __init__(self, flag: str) -> None:
        super().__init__()
        self.s, self.t = nn.Parameter(torch.zeros(1, D)), nn.Parameter(torch.zeros(1, D))
        self.register_buffer("data_dep_init_done", torch.tensor(0.0))

    def forward(self, x):
        if not self.data_dep_init_done > 0.0:
            self.s.data = -torch.log(x.std(dim=0, keepdim=True) + 1e-6)
            self.t.data = -x.mean(dim=0, keepdim=True) * torch.exp(self.s.data)
            self.data_dep_init_done = torch.tensor(1.0)
        return x * torch.exp(self.s) + self.t, self.s.sum().expand(len(x))

    @property
    def initialized(self) -> bool:
        return bool(self.data_dep_init_done > 0.0)


class Flow(nn.Module):
    def __init__(self, norm: type[nn.Module], flag: str) -> None:
        super().__init__()
        self.norm, self.mix = norm(flag), nn.Linear(D, D)

    def forward(self, x):
        z, log_det = self.norm(x)
        return self.mix(z), log_det + torch.linalg.slogdet(self.mix.weight)[1]


def log_p(out):
    return torch.distributions.Normal(0.0, 1.0).log_prob(out[0]).sum(1) + out[1]


def _flow(kind: str) -> Flow:
    torch.manual_seed(0)
    return Flow(GlowActNorm, "buffer") if kind == "glow-buffer" else Flow(GlowActNorm, "attribute") \
        if kind == "glow-attribute" else Flow(NfActNorm, "buffer")


def _x() -> torch.Tensor:
    return torch.randn(64, D, generator=torch.Generator().manual_seed(1)) * torch.tensor([1.0, 3.0, 0.5, 2.0]) + 1.0


def _state(flow: Flow) -> tuple[dict, list[int]]:
    return ({k: v.clone() for k, v in flow.state_dict().items()}, [p.data_ptr() for p in flow.parameters()])


def _same(flow: Flow, state: tuple[dict, list[int]]) -> None:
    values, pointers = state
    now = flow.state_dict()
    assert now.keys() == values.keys() and all(torch.equal(values[k], now[k]) for k in values), \
        {k: now[k] for k in values if not torch.equal(values[k], now[k])}
    assert [p.data_ptr() for p in flow.parameters()] == pointers
    assert not flow.norm.initialized


KINDS = ["glow-buffer", "glow-attribute", "normflows"]


@pytest.mark.parametrize("kind", KINDS)
def test_an_estimator_leaves_an_uninitialised_actnorm_as_it_found_it(kind: str) -> None:
    flow, x = _flow(kind), _x()
    state = _state(flow)
    effects = input_effects(flow, x, column_mask(D), output=log_p)
    _same(flow, state)
    # the audit explained the flow as initialised on its first pass (the probe), as it did before
    init = _flow(kind)
    init(x)
    with torch.no_grad():
        by_hand = torch.stack([log_p(init(x)) - log_p(init(x.index_fill(1, torch.tensor([j]), 0.0))) for j in range(D)], 1)
    torch.testing.assert_close(effects, by_hand, rtol=0, atol=1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_audit_model_and_no_trace_leave_an_uninitialised_actnorm_as_they_found_it(kind: str) -> None:
    flow, x = _flow(kind), _x()
    state = _state(flow)
    audit_model(flow, [InputEffectAudit(output=log_p)], (x,), probe_size=32)
    _same(flow, state)
    with no_trace(flow):
        flow(x)
        assert flow.norm.initialized and not torch.equal(next(flow.norm.parameters()), state[0][next(iter(state[0]))])
    _same(flow, state)
    with pytest.raises(RuntimeError, match="mid-way"), audit_mode(flow):
        flow(x)
        raise RuntimeError("mid-way")
    _same(flow, state)


def test_an_initialised_flow_and_torch_s_own_modules_are_not_copied() -> None:
    flow = _flow("glow-buffer")
    assert [tuple(p.shape) for p in uninitialised_params(nn.Sequential(flow, nn.BatchNorm1d(D)))] == [(D,), (D,)]
    flow(_x())
    assert uninitialised_params(nn.Sequential(flow, nn.BatchNorm1d(D))) == []
    # an initialised flow's later passes write nothing; its trained parameters stay as they are
    state = _state(flow)
    input_effects(flow, _x(), column_mask(D), output=log_p)
    assert all(torch.equal(state[0][k], v) for k, v in flow.state_dict().items())


def test_only_flags_named_for_initialisation_watch_a_modules_parameters():
    """Final read of f7cea5dd: any falsy int or bool attribute counted as "not initialised", so a user's subclass of a
    torch layer (timm's StdConv2d: Conv2d.transposed=False), a loralib-style layer (merged=False) and every
    LightningModule had their weights copied and compared at each audit block (up to 5 nested copies a Sobol' run)."""

    class StdConv2d(nn.Conv2d):  # inherits transposed=False, padding_mode, ...
        pass

    class Merging(nn.Linear):
        def __init__(self) -> None:
            super().__init__(3, 3)
            self.merged, self.fan_in_fan_out, self.count = False, False, 0

    class Inited(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.loc, self.inited = nn.Parameter(torch.zeros(3)), False

    class Flagged(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(3))
            self.register_buffer("data_dep_init_done", torch.tensor(0.0))
            self.register_buffer("steps", torch.tensor(0))

    model = nn.Sequential(StdConv2d(3, 4, 3), Inited(), Flagged())
    assert [tuple(p.shape) for p in uninitialised_params(model)] == [(3,), (3,)]  # Inited.loc, Flagged.scale
    assert uninitialised_params(nn.Sequential(StdConv2d(3, 4, 3))) == []
    # a layer holding `merged` may merge its update in an eval-mode forward (tests/causal/
    # test_newuser95_lora_merged_in_forward.py): watched where a pass may merge, in train mode or not merged yet;
    # merged already in eval mode, it is not
    merging = Merging()
    assert len(uninitialised_params(nn.Sequential(merging))) == 2
    merging.merged = True
    assert uninitialised_params(nn.Sequential(merging).eval()) == []
