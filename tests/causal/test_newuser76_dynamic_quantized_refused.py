"""A model deployed with ``torch.ao.quantization.quantize_dynamic`` (int8 Linear layers, which quantize their input
with one scale over every row of the batch) was warned about and run: where the two probe samples run alone agreed
with the batch by chance, ``unit_effects`` returned effects holding the quantization noise (off a hand "set, rerun,
difference" loop by 0.53 where the mean |effect| was 0.71, on a 31-32-32-2 MLP of breast-cancer data), and elsewhere
the sample-independence checks refused it naming control flow on a batch statistic (every audit of ``audit_model``,
probe of 100). It is refused before any pass, naming the quantized layers and the ways out; the docs' recipe (a float
copy of the int8 weights, dequantized) runs and compares the float and the int8 weights' unit importances."""

import re
import warnings
from pathlib import Path

import pytest
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import TensorDataset

from lightning_causal import InputEffectAudit, LayerMapAudit, UnitImportanceAudit, audit_model
from lightning_causal.causal import unit_effects

PAGE = Path(__file__).resolve().parents[2] / "docs" / "your_model.md"


def _float() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 2)).eval()


def _int8(model: nn.Module) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notices
        return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)


def _probe_alone_agrees_with_batch(q: nn.Module, x: torch.Tensor) -> bool:
    with torch.no_grad():
        return bool(torch.allclose(q(x[[0, -1]]), q(x)[[0, -1]], atol=1e-2))


def test_a_probe_whose_rows_agree_by_chance_is_refused_too():
    """Before: this probe's two samples alone agree with its batch, so unit_effects ran (with a warning) and its
    effects held the quantization noise; now refused like any other probe."""
    q = _int8(_float())
    x = torch.cat([torch.full((1, 6), 0.5), torch.randn(6, 6, generator=torch.Generator().manual_seed(3)) * 0.1,
                   torch.full((1, 6), -0.5)])  # rows 0 and -1 span the batch's range: the same scales alone
    assert _probe_alone_agrees_with_batch(q, x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"dynamically quantized layers \('0', '2', '4'; .*float model"):
            unit_effects(q, x, "1")


@pytest.mark.parametrize("audit", [UnitImportanceAudit(["1"]), InputEffectAudit(), LayerMapAudit(layers=["1", "3"])],
                         ids=["units", "inputs", "layer_map"])
def test_audit_model_refuses_naming_the_quantization_not_a_batch_statistic(audit):
    q = _int8(_float())
    data = TensorDataset(torch.randn(64, 6, generator=torch.Generator().manual_seed(1)), torch.randint(0, 2, (64,)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(MisconfigurationException) as refusal:
            audit_model(q, [audit], data, probe_size=64)
    message = str(refusal.value)
    assert "dynamically quantized layers ('0', '2', '4'" in message and "dequantize" in message
    assert "control flow" not in message
    # the model is refused, not the probe: no advice on how the batch is unpacked (review s35)
    assert "unpack_batch" not in message and "The probe of shape" not in message


def test_the_docs_recipe_runs_and_its_copy_holds_the_int8_weights():
    code = re.search(r"<!-- dequantized -->\s*```python\n(.*?)```", PAGE.read_text(), re.S).group(1)
    ns: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(code, "<your_model.md dequantized>", "exec"), ns)  # noqa: S102 - the docs' own example
    scalars = ns["int8_results"][0].scalars
    assert {"drift/importance/1/spearman", "drift/importance/3/spearman"} <= set(scalars)
    assert all(-1.0 <= scalars[k] <= 1.0 for k in scalars if k.endswith("spearman"))
    copy, int8 = ns["dequantized"](ns["int8"]), ns["int8"]
    for i in (0, 2, 4):
        assert isinstance(copy[i], nn.Linear) and torch.equal(copy[i].weight, int8[i].weight().dequantize())
        assert torch.equal(copy[i].bias, int8[i].bias())
    x = ns["data"].tensors[0][:1]  # one row alone: the int8 model quantizes it with its own scale
    with torch.no_grad():  # the copy differs from the deployed model by the input's quantization only
        assert float((copy(x) - int8(x)).abs().max()) < 0.05 * (1 + float(int8(x).abs().max()))
    assert ns["dequantized"](ns["net"]) is not ns["net"]  # a float model passes through, copied
    assert {"drift/importance/1/spearman", "drift/importance/3/spearman"} <= set(ns["served"][0].scalars)


def _recipe_functions() -> dict:
    code = re.search(r"<!-- dequantized -->\s*```python\n(.*?)\ntorch.manual_seed", PAGE.read_text(), re.S).group(1)
    ns: dict = {}
    exec(compile(code, "<your_model.md dequantized>", "exec"), ns)  # noqa: S102 - the docs' own functions
    return ns


@pytest.fixture(params=["x86", "fbgemm", "onednn", "qnnpack"])
def engine(request):
    """Each quantization engine this torch holds (QNNPACK is ARM's: 8-bit inputs, where x86's kernels take 7)."""
    if request.param not in torch.backends.quantized.supported_engines:
        pytest.skip(f"this torch has no {request.param} engine")
    before = torch.backends.quantized.engine
    torch.backends.quantized.engine = request.param
    yield request.param
    torch.backends.quantized.engine = before


def test_the_one_sample_copy_gives_the_int8_models_effects_each_sample_alone(engine):
    """The recipe's ``dequantized(int8, one_sample=True)``: its outputs are those of the int8 model run on each sample
    alone, and a unit's effect on it equals a hand loop on the int8 model, sample by sample (set the unit, rerun the
    sample alone, difference): the deployed model as it serves one sample at a time. On every engine, samples of a
    tiny range and with rounding ties too (review s35: QNNPACK's 8-bit inputs were emulated with x86's 7 bits, off by
    5e-2 on outputs of 4; a range under 127 * 6.1e-5 took a scale below the kernel's least; a sample spanning [-1, 1],
    a saturated tanh's, was rounded otherwise than the kernel, its parameters in float32 and its codes cut at 127)."""
    ns = _recipe_functions()
    int8 = _int8(_float())
    served = ns["dequantized"](int8, one_sample=True)
    x = torch.randn(10, 6, generator=torch.Generator().manual_seed(5)) * torch.linspace(0.1, 4, 10)[:, None]
    x[:2] *= 1e-3  # a sample of a tiny range: the kernel's least scale
    x[2] = torch.tensor([-1.0, 1.0, 0.5, -0.25, 1.0, 0.75])  # ties: a zero point of 63.5 (127.5), codes on a half step
    with torch.no_grad():
        alone = torch.cat([int8(x[i : i + 1]) for i in range(10)])
        torch.testing.assert_close(served(x), alone, atol=1e-5, rtol=1e-5)
        first = torch.cat([int8[0](x[i : i + 1]) for i in range(10)])  # the first layer, each sample alone
        torch.testing.assert_close(served[0](x), first, atol=2e-6, rtol=2e-6)
    effects = unit_effects(served, x, "1")
    t = alone.argmax(1)
    hand = torch.zeros(10, 16)
    with torch.no_grad():
        for u in range(16):
            handle = int8[1].register_forward_hook(lambda m, i, o, u=u: o.index_fill(1, torch.tensor([u]), 0.0))
            try:
                for i in range(10):
                    hand[i, u] = alone[i, t[i]] - int8(x[i : i + 1])[0, t[i]]
            finally:
                handle.remove()
    torch.testing.assert_close(effects, hand, atol=1e-5, rtol=1e-4)


def test_the_one_sample_copy_refuses_itself_where_its_engine_quantizes_otherwise():
    """The copy checks each layer against the int8 one: an input range the engine does not use (here x86's 7 bits
    read as QNNPACK's 8) is refused, not emulated wrong in silence."""
    ns = _recipe_functions()
    int8 = _int8(_float())
    ns["INPUT_QMAX"][torch.backends.quantized.engine] = 255 if ns["INPUT_QMAX"][torch.backends.quantized.engine] == 127 else 127
    with pytest.raises(RuntimeError, match=r"engine quantizes a dynamic Linear's input otherwise than this copy"):
        ns["dequantized"](int8, one_sample=True)


class _LoRAOnInt8(nn.Module):
    """A frozen int8 base (quantize_dynamic) with a float low-rank adapter that trains (QLoRA's pattern)."""

    def __init__(self) -> None:
        super().__init__()
        self.base = _int8(nn.Sequential(nn.Linear(6, 8)))[0]
        self.lora_A = nn.Parameter(torch.full((2, 6), 0.1))
        self.lora_B = nn.Parameter(torch.zeros(8, 2))
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(torch.relu(self.base(x) + x @ self.lora_A.t() @ self.lora_B.t()))


def test_the_callback_refuses_it_at_set_up_before_any_training_step(tmp_path):
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader

    from lightning_causal import CausalAuditCallback
    from lightning_causal.models import LightningClassifier

    torch.manual_seed(0)
    model = _LoRAOnInt8()
    data = TensorDataset(torch.randn(32, 6), torch.randint(0, 2, (32,)))
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, default_root_dir=tmp_path,
                         callbacks=[CausalAuditCallback([UnitImportanceAudit(["model.head:input"])], probe_size=16)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(MisconfigurationException, match=r"dynamically quantized layers \('model.base'; ") as refusal:
            trainer.fit(LightningClassifier(model), DataLoader(data, batch_size=8), DataLoader(data, batch_size=16))
    assert "unpack_batch" not in str(refusal.value)  # the model is refused, not the batch's unpacking
    assert torch.equal(model.lora_B, torch.zeros(8, 2))  # refused before the first step


def test_float16_dynamic_quantization_treats_rows_apart_and_runs():
    """``quantize_dynamic(..., dtype=torch.float16)`` packs float16 weights and quantizes no input: a row's output is
    the same alone and in its batch, so it is not refused (it was warned about at c05592e6's parent and refused at
    c05592e6), and a unit's effect equals a hand "set, rerun, difference" loop."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q16 = torch.ao.quantization.quantize_dynamic(_float(), {nn.Linear}, dtype=torch.float16)
    x = torch.randn(12, 6, generator=torch.Generator().manual_seed(4)) * 3
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        effects = unit_effects(q16, x, "1")
    assert [str(w.message) for w in record if "quantized" in str(w.message)] == []
    with torch.no_grad():
        out = q16(x)
        t = out.argmax(1, keepdim=True)
        for u in range(16):
            handle = q16[1].register_forward_hook(lambda m, i, o, u=u: o.index_fill(1, torch.tensor([u]), 0.0))
            try:
                hand = (out.gather(1, t) - q16(x).gather(1, t))[:, 0]
            finally:
                handle.remove()
            torch.testing.assert_close(effects[:, u], hand, atol=1e-6, rtol=1e-5)
