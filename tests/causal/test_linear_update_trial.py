"""The prefix cache's linear update (engine/linear_update.py) tried as a user would: tiny random
Hugging Face models of many architectures and plain models that torch.fx cannot trace, every
number compared with full forward passes (``use_suffix=False``) or a brute-force hook loop."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects
from lightning_causal.causal.engine.interventions import Scale, SetTo, Zero
from lightning_causal.causal.engine.live_values import close


def _ids(n: int = 4, length: int = 6, *, left: bool = False, eos: int | None = None, vocab: int = 60):
    """Token ids and attention mask; sample 0 has two padded positions (left or right)."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, vocab, (n, length), generator=g)
    mask = torch.ones(n, length, dtype=torch.long)
    if eos is not None:  # encoder-decoder classifiers pool the last <eos>
        ids[:, -1] = eos
    pad = slice(0, 2) if left else slice(-2, None)
    mask[0, pad], ids[0, pad] = 0, 0
    if eos is not None and not left:
        ids[0, -3] = eos
    return ids, mask


def _both(model, x, layer, **kw):
    fast, info = unit_effects(model, x, layer, target=1, return_info=True, **kw)
    full = unit_effects(model, x, layer, target=1, use_suffix=False, **kw)
    return fast, full, info


def _guard(x):
    if not bool(torch.isfinite(x).all()):  # data-dependent control flow: torch.fx cannot trace it (the hook split runs)
        raise ValueError("non-finite input")


class _Mlp(nn.Module):
    """``down`` reads ``act``'s output; ``clamp`` clamps ``down``'s output in place afterwards."""

    def __init__(self) -> None:
        super().__init__()
        self.up, self.act, self.down, self.head = nn.Linear(6, 32), nn.Tanh(), nn.Linear(32, 6), nn.Linear(6, 2)
        self.clamp: float | None = None

    def forward(self, x):
        _guard(x)
        y = self.down(self.act(self.up(x)))
        if self.clamp is not None:
            y.clamp_(max=self.clamp)
        return self.head(y).sum(1)


def _mlp():
    torch.manual_seed(0)
    model, x = _Mlp().double().eval(), torch.randn(6, 5, 6, dtype=torch.float64)
    with torch.no_grad():
        peaks = model.down(model.act(model.up(x))).amax(dim=(1, 2))
    trial, others = float(peaks[:2].max()), float(peaks[2:].max())
    assert others > trial + 0.02  # a clamp between them reaches a sample other than the trial rows 0, 1 only
    return model, x, (trial + others) / 2


def _brute(model, x, layer):
    """Zeroing each unit of the last dimension of ``layer`` by a forward hook: the drop of output 1."""
    module = dict(model.named_modules())[layer]
    with torch.no_grad():
        base = model(x)[:, 1]
        width = module(model.up(x)).shape[-1]
        columns = []
        for u in range(width):
            handle = module.register_forward_hook(lambda _m, _i, o, u=u: o.index_fill(-1, torch.tensor([u]), 0.0))
            try:
                columns.append(base - model(x)[:, 1])
            finally:
                handle.remove()
    return torch.stack(columns, 1)


def test_a_reader_output_clamped_in_place_later_gets_the_update_of_its_own_product(updates):
    # the probe's `down` output was recorded as a view of the tensor the model clamps in place after
    # it: samples beyond the trial rows were silently off by 7.6e-3 of 0.34 in float64
    model, x, peak = _mlp()
    model.clamp = peak
    fast, full, info = _both(model, x, "act", unit_dim=-1)
    assert info.linear_updates == ("'down'",) and updates["rows"] > 0
    torch.testing.assert_close(fast, full, rtol=0, atol=1e-12)
    torch.testing.assert_close(full, _brute(model, x, "act"), rtol=0, atol=1e-12)


def test_a_users_forward_hook_on_the_reader_runs_once_on_the_updated_output(updates):
    # the update answers the forward; the user's hook (a clamp reaching sample 5 only) then runs on
    # its answer: recording the hooked output instead added the clamp twice (7.6e-3 of 0.34)
    model, x, peak = _mlp()
    handle = model.down.register_forward_hook(lambda _m, _i, out: out.clamp(max=peak))
    try:
        fast, full, info = _both(model, x, "act", unit_dim=-1)
    finally:
        handle.remove()
    assert info.linear_updates == ("'down'",) and updates["rows"] > 0
    torch.testing.assert_close(fast, full, rtol=0, atol=1e-12)


def test_close_ignores_nan_outputs_for_its_scale():
    nan = float("nan")
    assert close(torch.tensor([nan, 1.0]), torch.tensor([nan, 1.0 + 1e-7]))
    assert not close(torch.tensor([nan, 1.0]), torch.tensor([nan, 1.1]))
    assert not close(torch.tensor([0.0, 1.0]), torch.tensor([nan, 1.0]))


def test_first_order_estimates_report_no_linear_update(updates):
    model, x, _ = _mlp()
    _, info = unit_effects(model, x, "act", unit_dim=-1, target=1, method="atp", return_info=True)
    assert updates["rows"] == 0 and info.linear_updates == ()  # was ("'down'",): no row ran
    _, info = unit_effects(model, x, "act", unit_dim=-1, target=1, screen=3, return_info=True)
    assert info.linear_updates == ("'down'",) and updates["rows"] > 0  # the screened units' exact rows


def _hf(name: str):
    transformers = pytest.importorskip("transformers")
    t = transformers
    common = {"vocab_size": 60, "num_labels": 2, "pad_token_id": 0}
    small = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2}
    cases = {
        "neox": (lambda: t.GPTNeoXForSequenceClassification(t.GPTNeoXConfig(
            **small, intermediate_size=64, max_position_embeddings=16, **common)), "gpt_neox.layers.0.mlp.act", None),
        "gemma": (lambda: t.GemmaForSequenceClassification(t.GemmaConfig(
            **small, num_key_value_heads=1, head_dim=8, intermediate_size=64, max_position_embeddings=16, **common)),
            "model.layers.0.mlp.down_proj:input", None),
        "phi": (lambda: t.PhiForSequenceClassification(t.PhiConfig(
            **small, intermediate_size=64, max_position_embeddings=16, **common)), "model.layers.0.mlp.activation_fn", None),
        "bloom": (lambda: t.BloomForSequenceClassification(t.BloomConfig(hidden_size=16, n_layer=2, n_head=2, **common)),
                  "transformer.h.0.mlp.gelu_impl", None),
        "t5": (lambda: t.T5ForSequenceClassification(t.T5Config(
            d_model=16, d_ff=64, d_kv=8, num_layers=1, num_decoder_layers=2, num_heads=2, decoder_start_token_id=0,
            eos_token_id=1, **common)), "transformer.decoder.block.0.layer.2.DenseReluDense.act", 1),
        "bart": (lambda: t.BartForSequenceClassification(t.BartConfig(
            d_model=16, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
            encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=16, eos_token_id=2, bos_token_id=1, **common)),
            "model.encoder.layers.0.activation_fn", 2),
        "distilbert": (lambda: t.DistilBertForSequenceClassification(t.DistilBertConfig(
            dim=16, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=16, **common)),
            "distilbert.transformer.layer.0.ffn.lin2:input", None),
        "albert": (lambda: t.AlbertForSequenceClassification(t.AlbertConfig(  # one layer, called twice
            embedding_size=8, **small, intermediate_size=64, max_position_embeddings=16, **common)),
            "albert.encoder.albert_layer_groups.0.albert_layers.0.activation", None),
        "deberta": (lambda: t.DebertaV2ForSequenceClassification(t.DebertaV2Config(
            **small, intermediate_size=64, max_position_embeddings=16, **common)), "deberta.encoder.layer.0.intermediate", None),
    }
    build, site, eos = cases[name]
    torch.manual_seed(0)
    model = build().double().eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # larger weights than the init: effects well above rounding
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.2)
    return model, site, eos


READERS = {
    "neox": "gpt_neox.layers.0.mlp.dense_4h_to_h", "gemma": "model.layers.0.mlp.down_proj", "phi": "model.layers.0.mlp.fc2",
    "bloom": "transformer.h.0.mlp.dense_4h_to_h", "t5": "transformer.decoder.block.0.layer.2.DenseReluDense.wo",
    "bart": "model.encoder.layers.0.fc2", "distilbert": "distilbert.transformer.layer.0.ffn.lin2",
    "albert": "albert.encoder.albert_layer_groups.0.albert_layers.0.ffn_output", "deberta": "deberta.encoder.layer.0.output.dense",
}


@pytest.mark.parametrize("name", list(READERS))
def test_hugging_face_mlp_neurons_equal_the_full_passes(name, updates, monkeypatch):
    model, site, eos = _hf(name)
    ids, mask = _ids(left=name in ("gemma", "bloom"), eos=eos)  # a left-padded Bloom has a NaN output row
    unmoved = []  # the rows left unrun (unit_rows.moving_rows: Scale(2.0) of a T5 ReLU neuron at 0 everywhere)
    module = sys.modules["lightning_causal.causal.effects.unit_effects"]
    moving_rows = module.moving_rows

    def counted(*args):
        moving = moving_rows(*args)
        unmoved.append(0 if moving is None else int((~moving).sum()))
        return moving

    monkeypatch.setattr(module, "moving_rows", counted)
    fast, full, info = _both(model, ids, site, unit_dim=-1, additional_forward_args={"attention_mask": mask},
                             intervention=[SetTo(-1.0), Scale(2.0)])
    assert info.path == "hooks" and info.linear_updates == (repr(READERS[name]),)
    assert updates["rows"] == 2 * 4 * 64 - unmoved[0] + 2  # every row of the do-grid that runs, and the two trial rows
    assert torch.equal(fast.isnan(), full.isnan())
    torch.testing.assert_close(fast, full, rtol=0, atol=1e-10, equal_nan=True)


def test_heads_of_an_eighth_of_the_inputs_are_answered_by_the_update(updates):
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=16, num_labels=2)
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config).double().eval()
    ids, mask = _ids()
    fast, full, info = _both(model, ids, "bert.encoder.layer.0.attention.self", num_heads=8,  # heads of 4 of 32
                             additional_forward_args={"attention_mask": mask})
    assert info.linear_updates == ("'bert.encoder.layer.0.attention.output.dense'",) and updates["rows"] == 4 * 8 + 2
    torch.testing.assert_close(fast, full, rtol=0, atol=1e-10)


class _Readers(nn.Module):
    """``act`` read by a LoRA-like subclass of nn.Linear, by a view, by a residual and by a plain linear
    also called on another tensor."""

    class LoRA(nn.Linear):
        def __init__(self, i: int, o: int) -> None:
            super().__init__(i, o)
            self.a, self.b = nn.Linear(i, 2, bias=False), nn.Linear(2, o, bias=False)

        def forward(self, x):
            return super().forward(x) + self.b(self.a(x))

    def __init__(self) -> None:
        super().__init__()
        self.up, self.act, self.other = nn.Linear(6, 32), nn.Tanh(), nn.Linear(6, 32)
        self.lora, self.viewed, self.shared = self.LoRA(32, 6), nn.Linear(32, 6), nn.Linear(32, 6)
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        _guard(x)
        h = self.act(self.up(x))
        y = self.lora(h) + self.viewed(h.view(h.shape)) + self.shared(h) * self.shared(torch.sin(self.other(x)))
        return self.head(y + h[..., :6]).sum(1)


def test_only_plain_linear_layers_reading_the_tensor_itself_are_answered(updates):
    torch.manual_seed(0)
    model, x = _Readers().double().eval(), torch.randn(5, 4, 6, dtype=torch.float64)
    with torch.no_grad():
        nn.init.normal_(model.lora.b.weight)
    for iv in (Zero(), Scale(-2.0)):
        fast, full, info = _both(model, x, "act", unit_dim=-1, intervention=iv, max_batch_size=7)
        # the subclass runs as usual (its inner `a` reads h itself); a view is another tensor
        assert info.path == "hooks" and info.linear_updates == ("'lora.a'", "'shared'")
        torch.testing.assert_close(fast, full, rtol=0, atol=1e-12)
    torch.testing.assert_close(unit_effects(model, x, "act", unit_dim=-1, target=1), _brute(model, x, "act"), rtol=0, atol=1e-12)


def test_cnn_channels_written_in_place_equal_the_full_passes():
    from lightning_causal.models import ResNet18

    class Guarded(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x):
            _guard(x)
            return self.inner(x)

    torch.manual_seed(0)
    model = Guarded(ResNet18(width=4, num_classes=3, blocks=(1, 1))).double().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(3, 3, 8, 8, dtype=torch.float64)
    for layer in ("inner.layers.0.c1", "inner.layers.1"):
        fast, full, info = _both(model, x, layer, intervention=[SetTo(0.5), Scale(-1.0)])
        assert info.path == "hooks"
        torch.testing.assert_close(fast, full, rtol=0, atol=1e-12)


class _Frontier(nn.Module):
    """``up``'s output goes through a unit-mixing centring and a Tanh to the LayerNorm (the frontier of
    the attribution estimate); ``aux``, a linear layer reading ``up``'s output itself, is logged, not
    returned. ``guard``: not traceable (the hook split runs)."""

    def __init__(self, guard: bool) -> None:
        super().__init__()
        self.guard = guard
        self.up, self.act, self.ln = nn.Linear(6, 32), nn.Tanh(), nn.LayerNorm(32)
        self.down, self.head, self.aux = nn.Linear(32, 6), nn.Linear(6, 2), nn.Linear(32, 3)

    def forward(self, x):
        if self.guard:
            _guard(x)
        h = self.up(x)
        out = self.head(self.down(self.ln(self.act(h - h.mean(-1, keepdim=True))))).sum(1)
        self.logged = self.aux(h).sum(1)
        return out


def _frontier_twins():
    torch.manual_seed(0)
    traced, hooked = _Frontier(False).double().eval(), _Frontier(True).double().eval()
    hooked.load_state_dict(traced.state_dict())
    return traced, hooked, torch.randn(5, 4, 6, dtype=torch.float64)


@pytest.mark.parametrize("max_batch_size", [None, 2])
def test_the_attribution_frontier_is_found_on_the_hooks_path(max_batch_size):
    # the hook split's run calls the layer once (its answered cut), which find_frontier took for a second
    # call: no frontier on the hooks path (every Hugging Face model), the estimate taken at h instead,
    # 0.18 off the traced twin's on a Tanh network. Found, the frontier's partial runs then met the linear
    # update's first trial run (`aux` reads h): its rows stopped at the frontier instead (0.064 off, or a
    # shape error); the trial runs now go before the stop (PrefixCache.prepare)
    traced, hooked, x = _frontier_twins()
    kw = {"unit_dim": -1, "target": 1, "method": "attribution", "intervention": SetTo(2.0), "max_batch_size": max_batch_size}
    reference, info_fx = unit_effects(traced, x, "up", return_info=True, **kw)
    estimate, info = unit_effects(hooked, x, "up", return_info=True, **kw)
    assert info_fx.path == "fx" and info.path == "hooks"
    torch.testing.assert_close(estimate, reference, rtol=0, atol=1e-12)


def test_a_screen_after_the_frontier_runs_its_exact_rows_with_the_update(updates):
    traced, hooked, x = _frontier_twins()
    reference = unit_effects(traced, x, "up", unit_dim=-1, target=1, screen=4)
    assert updates["rows"] == 4 * 5 + 2  # the traced twin's fx path is answered by the update too (graph_linear_s32)
    screened, info = unit_effects(hooked, x, "up", unit_dim=-1, target=1, screen=4, return_info=True)
    assert info.linear_updates == ("'aux'",) and updates["rows"] == 2 * (4 * 5 + 2)
    torch.testing.assert_close(screened, reference, rtol=0, atol=1e-12)
