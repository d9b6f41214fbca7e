"""Units beyond channels: attention heads (`num_heads`) and MLP neurons of [N, T, D] hidden states
(`unit_dim=-1`), in the interventions, `unit_effects` and `UnitImportanceAudit`."""

import pytest
import torch

from lightning_causal.audits import UnitImportanceAudit
from lightning_causal.audits.base import Probe
from lightning_causal.causal import (
    MeanOf,
    Resample,
    Scale,
    SetTo,
    Zero,
    capture,
    intervene,
    unit_effects,
)
from lightning_causal.causal.engine.units import resolve_layout
from tests.helpers.bert import tiny_bert, token_batch
from tests.helpers.models import all_hook_counts

SELF = "bert.encoder.layer.1.attention.self"
NEURONS = "bert.encoder.layer.0.intermediate"


def _logits(model, ids, mask):
    return model(ids, attention_mask=mask).logits


def _head_hook(head: int, size: int, value=None):
    """Brute force: a hand-written hook that sets one head's slice of element 0 to `value` (0 by default)."""

    def hook(_m, _i, out):
        h = (out[0] if isinstance(out, tuple) else out).clone()
        h[..., head * size:(head + 1) * size] = 0.0 if value is None else value(h)[..., head * size:(head + 1) * size]
        return (h, *out[1:]) if isinstance(out, tuple) else h

    return hook


def _brute_heads(model, ids, mask, layer, heads, size, target, value=None):
    module = model.get_submodule(layer)
    with torch.no_grad():
        f0 = _logits(model, ids, mask).gather(1, target[:, None])[:, 0]
        cols = []
        for head in range(heads):
            handle = module.register_forward_hook(_head_hook(head, size, value))
            try:
                cols.append(f0 - _logits(model, ids, mask).gather(1, target[:, None])[:, 0])
            finally:
                handle.remove()
    return torch.stack(cols, 1)


def test_head_effects_equal_a_brute_force_head_loop():
    model = tiny_bert(1)
    ids, mask = token_batch()
    target = _logits(model, ids, mask).argmax(1)
    ours = unit_effects(model, ids, SELF, num_heads=4, additional_forward_args={"attention_mask": mask})
    torch.testing.assert_close(ours, _brute_heads(model, ids, mask, SELF, 4, 8, target), atol=1e-6, rtol=0)
    assert ours.shape == (5, 4) and ours.abs().min() > 0
    # explicit unit_dim, and a head-wise Scale
    scaled = unit_effects(model, ids, SELF, Scale(0.5), unit_dim=2, num_heads=4, additional_forward_args={"attention_mask": mask})
    ref = _brute_heads(model, ids, mask, SELF, 4, 8, target, value=lambda h: 0.5 * h)
    torch.testing.assert_close(scaled, ref, atol=1e-6, rtol=0)
    assert all_hook_counts(model) == 0


def test_head_with_zero_value_weights_has_no_effect():
    model = tiny_bert(2)
    attention = model.get_submodule(SELF)
    with torch.no_grad():  # head 2 = dimensions 16..23 of the value projection
        attention.value.weight[16:24] = 0.0
        attention.value.bias[16:24] = 0.0
    ids, mask = token_batch()
    eff = unit_effects(model, ids, SELF, num_heads=4, additional_forward_args={"attention_mask": mask})
    assert eff[:, 2].abs().max() < 1e-12  # 0 up to float64 rounding of batch-size dependent kernels
    assert torch.all(eff[:, [0, 1, 3]].abs().amax(0) > 1e-6)


def test_neuron_effects_equal_brute_force():
    model = tiny_bert(3)
    ids, mask = token_batch()
    target = _logits(model, ids, mask).argmax(1)
    ours = unit_effects(model, ids, NEURONS, unit_dim=-1, additional_forward_args={"attention_mask": mask})
    ref = _brute_heads(model, ids, mask, NEURONS, 64, 1, target)  # a neuron is a head of size 1
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=0)
    sel = unit_effects(model, ids, NEURONS, Zero(units=[5, 9]), unit_dim=-1, additional_forward_args={"attention_mask": mask})
    torch.testing.assert_close(sel, ref[:, [5, 9]], atol=1e-6, rtol=0)


def test_interventions_per_head_and_per_neuron_by_hand():
    h = torch.arange(24.0).view(1, 2, 12)  # [N=1, T=2, 3 heads of 4]
    out = Zero(units=[1], num_heads=3)(h)
    assert torch.all(out[..., 4:8] == 0) and torch.equal(out[..., :4], h[..., :4]) and torch.equal(out[..., 8:], h[..., 8:])
    out = SetTo(torch.tensor([7.0, 8.0, 9.0]), num_heads=3)(h)  # one value per head
    assert torch.equal(out[0, 0], torch.tensor([7.0] * 4 + [8.0] * 4 + [9.0] * 4))
    out = Scale(2.0, units=0, unit_dim=-1)(h)  # neuron 0 of every token
    assert torch.equal(out[0, :, 0], 2 * h[0, :, 0]) and torch.equal(out[0, :, 1:], h[0, :, 1:])
    ref = torch.stack([torch.zeros(2, 12), torch.full((2, 12), 2.0)])
    assert torch.equal(MeanOf(ref, units=2, num_heads=3)(h)[..., 8:], torch.ones(1, 2, 4))
    longer = torch.stack([torch.arange(12.0).expand(5, 12), torch.zeros(5, 12)])  # sequences of another length
    assert torch.equal(MeanOf(longer, units=[3], unit_dim=-1)(h)[0, :, 3], torch.full((2,), 1.5))
    drawn = Resample(torch.full((3, 2, 12), -1.0), torch.Generator().manual_seed(0), units=[0], num_heads=3)(h)
    assert torch.all(drawn[..., :4] == -1) and torch.equal(drawn[..., 4:], h[..., 4:])


def test_every_intervention_per_head_matches_a_hand_hook():
    model = tiny_bert(4)
    ids, mask = token_batch()
    with capture(model, [SELF]) as acts:
        _logits(model, ids, mask)
    ref = acts[SELF]
    target = _logits(model, ids, mask).argmax(1)
    cases = [
        (SetTo(0.7), lambda h: torch.full_like(h, 0.7)),
        (MeanOf(ref), lambda h: ref.mean(0).expand_as(h)),
        (Scale(-1.0), lambda h: -h),
    ]
    for iv, value in cases:
        ours = unit_effects(model, ids, SELF, iv, num_heads=4, additional_forward_args={"attention_mask": mask})
        torch.testing.assert_close(ours, _brute_heads(model, ids, mask, SELF, 4, 8, target, value=value), atol=1e-6, rtol=0)
    # Resample from a reference whose rows are all sample 3's activations: do(h_head := h_head(x_3))
    same = ref[3:4].expand(6, *ref.shape[1:])
    res = unit_effects(model, ids, SELF, Resample(same, torch.Generator().manual_seed(1)), num_heads=4,
                       additional_forward_args={"attention_mask": mask})
    brute = _brute_heads(model, ids, mask, SELF, 4, 8, target, value=lambda h: ref[3:4].expand_as(h))
    torch.testing.assert_close(res, brute, atol=1e-6, rtol=0)
    assert torch.all(res[3].abs() < 1e-9)  # patching a sample's own activations changes nothing


def test_intervene_on_a_tuple_returning_attention_module():
    model = tiny_bert(5)
    ids, mask = token_batch()
    with intervene(model, {SELF: Zero(units=[0, 1, 2, 3], num_heads=4)}), capture(model, [SELF]) as acts:
        _logits(model, ids, mask)
    assert torch.all(acts[SELF] == 0)
    assert all_hook_counts(model) == 0


def test_unit_importance_audit_per_layer_layouts():
    model = tiny_bert(6)
    ids, mask = token_batch()
    audit = UnitImportanceAudit([SELF, NEURONS], top_k=3, num_heads={SELF: 4}, unit_dim={NEURONS: -1},
                                additional_forward_args={"attention_mask": mask})
    result = audit.run(model, Probe(ids))
    assert result.vectors[f"importance/{SELF}"].shape == (4,)
    assert result.vectors[f"importance/{NEURONS}"].shape == (64,)
    eff = unit_effects(model, ids, SELF, num_heads=4, additional_forward_args={"attention_mask": mask})
    torch.testing.assert_close(result.vectors[f"importance/{SELF}"], eff.abs().mean(0))
    assert result.meta[f"path/{SELF}"] == "hooks"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"unit_dim": 0}, "batch dimension"),
        ({"unit_dim": 3}, "non-batch dimension"),
        ({"num_heads": 5}, "divide"),
        ({"num_heads": 0}, "num_heads"),
        ({"unit_dim": 1.0}, "unit_dim"),
    ],
)
def test_layout_argument_checks(kwargs, match):
    model = tiny_bert(7)
    ids, mask = token_batch()
    with pytest.raises((ValueError, TypeError), match=match):
        unit_effects(model, ids, SELF, additional_forward_args={"attention_mask": mask}, **kwargs)


def test_conflicting_layouts_rejected():
    with pytest.raises(ValueError, match="unit layout"):
        Zero(num_heads=2).with_layout(-1, None)
    with pytest.raises(ValueError, match="one unit layout"):
        unit_effects(tiny_bert(), token_batch()[0], SELF, [SetTo(0.0, num_heads=4), SetTo(1.0)])
    assert resolve_layout((2, 3, 8), num_heads=2) == (2, 4, 2)
    with pytest.raises(ValueError, match="UnitImportanceAudit|unit_dim"):
        UnitImportanceAudit(["a"], unit_dim={"b": -1})


def test_heads_of_torch_multihead_attention_are_refused_not_sliced():
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    model = torch.nn.Sequential(layer, torch.nn.Flatten(), torch.nn.Linear(8 * 3, 3)).eval()
    x = torch.randn(5, 3, 8)
    with pytest.raises(ValueError, match=r"'0.self_attn' is not: a torch.nn.MultiheadAttention.*out_proj"):
        unit_effects(model, x, "0.self_attn", num_heads=2)  # its output is projected: halves of it are not heads
    with pytest.raises(ValueError, match="MultiheadAttention"), intervene(model, {"0.self_attn": Zero(units=0, num_heads=2)}):
        pass
    assert all_hook_counts(model) == 0
    features = unit_effects(model, x, "0.self_attn", unit_dim=-1)  # output features: allowed, and they do act
    assert features.shape == (5, 8) and float(features.abs().sum()) > 0


class _LSTMClassifier(torch.nn.Module):
    def __init__(self, read_h_n: bool) -> None:
        super().__init__()
        self.read_h_n = read_h_n
        self.lstm = torch.nn.LSTM(5, 6, batch_first=True)
        self.fc = torch.nn.Linear(6, 3)

    def forward(self, x):
        out, (h, _c) = self.lstm(x)
        return self.fc(h[-1] if self.read_h_n else out[:, -1])


def test_a_tuple_module_whose_element_zero_the_model_ignores_is_refused():
    torch.manual_seed(0)
    x = torch.randn(4, 7, 5)
    with pytest.raises(ValueError, match=r"depend on element 0 of module 'lstm'.*h_n"):
        unit_effects(_LSTMClassifier(read_h_n=True).eval(), x, "lstm", unit_dim=-1)  # every effect would be 0
    model = _LSTMClassifier(read_h_n=False).eval()
    effects = unit_effects(model, x, "lstm", unit_dim=-1)  # the output sequence is what the model reads
    with torch.no_grad():
        clean = model(x)
        t = clean.argmax(1, keepdim=True)
        hook = model.lstm.register_forward_hook(lambda _m, _i, out: (out[0].index_fill(-1, torch.tensor([2]), 0.0), out[1]))
        brute = (clean.gather(1, t) - model(x).gather(1, t))[:, 0]
        hook.remove()
    assert torch.allclose(effects[:, 2], brute, atol=1e-6) and float(effects.abs().sum()) > 0


def test_heads_after_an_output_projection_are_refused():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.DistilBertConfig(vocab_size=50, dim=16, n_layers=1, n_heads=2, hidden_dim=32, max_position_embeddings=8)
    model = transformers.DistilBertForSequenceClassification(config).eval()
    ids = torch.randint(0, 50, (3, 6))
    with pytest.raises(ValueError, match=r"comes from a layer inside it that mixes features"):
        unit_effects(model, ids, "distilbert.transformer.layer.0.attention", num_heads=2)  # returns out_lin's output
    ids_b, mask_b = token_batch(n=3)
    with pytest.raises(ValueError, match=r"'bert.encoder.layer.0.attention' is not: its output comes from a layer inside it that mixes"):
        unit_effects(tiny_bert(3), ids_b, "bert.encoder.layer.0.attention", num_heads=4)  # dense, residual, LayerNorm
    heads = unit_effects(tiny_bert(3), ids_b, SELF, num_heads=4, additional_forward_args={"attention_mask": mask_b})
    assert heads.shape == (3, 4)  # BERT's attention.self: the context before the projection, accepted


def test_zeroing_a_heads_values_zeroes_the_head_where_no_module_returns_the_heads():
    """transformers >= 5 attention (q/k/v/o_proj, the heads combined functionally): ``v_proj`` with
    ``num_heads`` zero-ablates a head exactly (its output is attention-weighted values), as a hook
    zeroing that head's slice of ``o_proj``'s input does."""
    transformers = pytest.importorskip("transformers")
    config = transformers.ViTConfig(image_size=8, patch_size=4, num_channels=1, hidden_size=16, num_hidden_layers=1,
                                    num_attention_heads=4, intermediate_size=32, num_labels=3)
    torch.manual_seed(0)
    model = transformers.ViTForImageClassification(config).double().eval()
    attn = next((m for n, m in model.named_modules() if n.endswith("attention") and hasattr(m, "v_proj") and hasattr(m, "o_proj")), None)
    if attn is None:
        pytest.skip("this transformers version has a module that returns the heads")
    name = next(n for n, m in model.named_modules() if m is attn.v_proj)
    x = torch.rand(5, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    got = unit_effects(model, x, name, num_heads=4, target=0)
    with torch.no_grad():
        full = model(x).logits[:, 0]
        for h in range(4):
            def zero_head(_m, args, h=h):
                z = args[0].clone()
                z[..., 4 * h:4 * (h + 1)] = 0
                return (z, *args[1:])
            handle = attn.o_proj.register_forward_pre_hook(zero_head)
            try:
                torch.testing.assert_close(got[:, h], full - model(x).logits[:, 0])
            finally:
                handle.remove()
