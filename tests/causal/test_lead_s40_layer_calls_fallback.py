"""The layer-call recorder's fallback (a function of torch's computed the output after the layers) names the last layer
called only where the output's values could have come out of it; and a block records its own thread's passes only."""

from __future__ import annotations

import threading

import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit, Probe
from lightning_causal.audits.label_task import label_task
from lightning_causal.causal.engine.layer_calls import layer_calls, output_layer


class _Gated(nn.Module):  # a head gated by an nn.Sigmoid called after it: logits, no multi-label task
    def __init__(self) -> None:
        super().__init__()
        self.g, self.gate, self.cls = nn.Linear(4, 3), nn.Sigmoid(), nn.Linear(4, 3)

    def forward(self, x):
        return self.cls(x) * self.gate(self.g(x))


class _AttentionPooled(nn.Module):  # per-instance logits pooled by an attention softmax called after the head
    def __init__(self) -> None:
        super().__init__()
        self.soft, self.att, self.enc, self.cls = nn.Softmax(1), nn.Linear(16, 1), nn.Linear(4, 16), nn.Linear(16, 3)

    def forward(self, x):
        h = torch.relu(self.enc(x))
        return (self.cls(h) * self.soft(self.att(h))).sum(1)


class _Residual(nn.Module):  # x + sigmoid(fc(x)): values beyond [0, 1]
    def __init__(self) -> None:
        super().__init__()
        self.fc, self.sig = nn.Linear(3, 3), nn.Sigmoid()

    def forward(self, x):
        return 2 * x + self.sig(self.fc(x))


class _Clamped(nn.Module):  # sigmoid(h).clamp(eps, 1 - eps), the BCELoss guard: a multi-label head
    def __init__(self) -> None:
        super().__init__()
        self.fc, self.sig = nn.Linear(4, 3), nn.Sigmoid()

    def forward(self, x):
        return self.sig(self.fc(x)).clamp(1e-6, 1 - 1e-6)


class _SequenceSoftmax(nn.Module):  # a per-position softmax over the last dimension, cast: still the softmax's rows
    def __init__(self) -> None:
        super().__init__()
        self.fc, self.soft = nn.Linear(4, 3), nn.Softmax(dim=-1)

    def forward(self, x):
        return self.soft(self.fc(x)).double()


def _read(model: nn.Module, x: torch.Tensor) -> tuple:
    torch.manual_seed(0)
    with layer_calls(), torch.no_grad():
        model(x)
    return output_layer(model)


def test_an_activation_called_after_the_head_is_not_taken_for_the_output_layer():
    torch.manual_seed(0)
    x = torch.randn(12, 4) * 3
    assert _read(_Gated().eval(), x) == (None,)
    assert _read(_AttentionPooled().eval(), torch.randn(12, 5, 4)) == (None,)
    assert _read(_Residual().eval(), torch.randn(12, 3) * 3) == (None,)
    # the cases the fallback is for still read the activation
    assert _read(_Clamped().eval(), x) == ("Sigmoid",)
    assert _read(_SequenceSoftmax().eval(), torch.randn(6, 5, 4)) == ("Softmax",)


def test_a_gated_model_keeps_no_task_after_an_audit():
    torch.manual_seed(0)
    gated = _Gated().eval()
    before = label_task(gated)
    InputEffectAudit().run(gated, Probe(torch.randn(12, 4) * 3))
    assert label_task(gated) == before != "multilabel"


def test_a_block_records_only_its_own_threads_passes():
    torch.manual_seed(0)
    other = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1), nn.Sigmoid())
    net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
    ran, stop, errors = threading.Event(), threading.Event(), []

    def spin() -> None:
        try:
            with torch.no_grad():
                while not stop.is_set():
                    other(torch.randn(4, 3))
                    ran.set()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    thread = threading.Thread(target=spin)
    thread.start()
    try:
        ran.wait(5)
        with layer_calls() as rec, torch.no_grad():
            for _ in range(300):
                net(torch.randn(4, 3))
                assert {id(c.module) for c in rec.calls} <= {id(m) for m in net}
                assert output_layer(net) == ("Linear",)
    finally:
        stop.set()
        thread.join()
    assert not errors
    assert output_layer(other) is None  # never run in a block of its own thread


class _LogOf(nn.Module):  # the log of an activation's output (the NLLLoss pattern), its task the activation's
    def __init__(self, act: nn.Module, end) -> None:
        super().__init__()
        self.fc, self.act, self.end = nn.Linear(4, 5), act, end

    def forward(self, x):
        return self.end(self.act(self.fc(x)))


def test_the_log_of_an_activation_still_names_it():
    torch.manual_seed(0)
    x = torch.randn(12, 4) * 3
    assert _read(_LogOf(nn.Softmax(1), torch.log).eval(), x) == ("Softmax",)
    assert _read(_LogOf(nn.Softmax(1), lambda p: p.clamp_min(1e-8).log()).eval(), x) == ("Softmax",)
    assert _read(_LogOf(nn.Sigmoid(), lambda p: torch.log(p + 1e-8)).eval(), x) == ("Sigmoid",)
    model = _LogOf(nn.Softmax(1), torch.log).eval()
    InputEffectAudit().run(model, Probe(x))
    assert label_task(model) == "multiclass"


class _Cast(nn.Module):  # a half-precision body whose output is cast to float32
    def __init__(self, body: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.body, self.dtype = body, dtype

    def forward(self, x):
        return self.body(x.to(self.dtype)).float()


def test_a_half_precision_activation_cast_to_float32_is_named_at_its_own_rounding():
    for k in (2, 10, 100, 1000):
        for act, name in ((nn.Softmax(-1), "Softmax"), (nn.LogSoftmax(-1), "LogSoftmax")):
            for dtype in (torch.bfloat16, torch.float16):
                torch.manual_seed(k)
                model = nn.Sequential()
                model.fc, model.act = nn.Linear(8, k).to(dtype), act

                cast = _Cast(model, dtype)
                assert _read(cast, torch.randn(16, 8) * 4) == (name,), (k, name, dtype)


class _SqueezeExcite(nn.Module):  # x * sigmoid(gate): its record keeps a small copy, not a view of the whole output
    def __init__(self) -> None:
        super().__init__()
        self.fc, self.gate = nn.Conv2d(8, 8, 1), nn.Sigmoid()

    def forward(self, x):
        return x * self.gate(self.fc(x.mean((2, 3), keepdim=True)))


def test_a_record_holds_a_small_copy_read_as_it_was():
    from lightning_causal.causal.engine import layer_calls as lc

    torch.manual_seed(0)
    block, x = _SqueezeExcite(), torch.rand(16, 8, 32, 32)
    with layer_calls(), torch.no_grad():
        out = block(x)
    record = lc._OUTPUT_LAYER[block]
    assert record.rows.numel() <= lc._CHECKED_VALUES
    assert record.rows.untyped_storage().nbytes() <= 4 * lc._CHECKED_VALUES  # a copy, not the output's storage
    assert record.rows.untyped_storage().data_ptr() != out.untyped_storage().data_ptr()
    soft = _LogOf(nn.Softmax(1), lambda p: p).eval()
    with layer_calls(), torch.no_grad():
        probs = soft(torch.randn(6, 4))
    probs.add_(5)  # changed after the pass: the record read as the pass left it
    assert output_layer(soft) == ("Softmax",)
    assert output_layer(block) == ("Sigmoid",)  # x in [0, 1] times a gate in [0, 1]


def test_a_float32_softmax_cast_down_is_read_at_the_cast_rounding():
    for dtype in (torch.float16, torch.bfloat16):
        for k in (10, 100, 1000):
            torch.manual_seed(k)
            model = _LogOf(nn.Softmax(1), lambda p, d=dtype: p.to(d)).eval()
            model.fc = nn.Linear(4, k)
            assert _read(model, torch.randn(12, 4) * 3) == ("Softmax",), (dtype, k)


def test_a_gated_image_is_checked_over_its_channels_not_its_first_channel():
    # channel 0 of every sample a dead gate's 0, the others beyond [0, 1] (x * gate, no Sigmoid's output): read from the
    # first axes first, the kept corner was channel 0 of sample 0 alone
    class _DeadFirstChannel(_SqueezeExcite):
        def forward(self, x):
            out = super().forward(x)
            return torch.cat([out[:, :1] * 0, out[:, 1:] * 10 - 5], 1)

    torch.manual_seed(0)
    assert _read(_DeadFirstChannel().eval(), torch.rand(16, 8, 64, 64)) == (None,)


def test_an_input_gate_over_a_dead_border_is_not_taken_for_a_sigmoid_output():
    # x * sigmoid(conv(x)) on MNIST-normalised digits: the border at -0.42, the digit beyond [0, 1]; a leading corner of
    # the image (its first columns) held the border alone, all at most 0, read as a log-sigmoid
    class _InputGate(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.gate = nn.Conv2d(1, 1, 3, padding=1), nn.Sigmoid()

        def forward(self, x):
            return x * self.gate(self.conv(x))

    torch.manual_seed(0)
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 6:22, 6:22] = torch.rand(64, 1, 16, 16)
    assert _read(_InputGate().eval(), (x - 0.1307) / 0.3081) == (None,)
