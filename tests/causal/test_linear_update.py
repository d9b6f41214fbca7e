"""The prefix cache's linear update (engine/linear_update.py): the linear layer that reads an
intervened layer's output is answered as its probe output plus the changed columns' product."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects
from lightning_causal.causal.engine import linear_update
from lightning_causal.causal.engine.interventions import Scale, Zero
from lightning_causal.causal.engine.linear_update import LinearReaders
from lightning_causal.causal.engine.prefix_cache import cache_prefix
from lightning_causal.causal.engine.state import audit_mode
from tests.helpers.bert import tiny_bert, tiny_llama, token_batch

TRIAL = 2  # rows of the cache's trial check of the update, per prefix cache built


def _effects(model, xs, layer, **kw):
    fast = unit_effects(model, xs, layer, target=1, return_info=True, **kw)
    full = unit_effects(model, xs, layer, target=1, use_suffix=False, **kw)
    return fast, full


def test_bert_neurons_equal_the_full_passes_and_use_the_update(updates):
    model = tiny_bert(layers=2)
    ids, mask = token_batch(n=4)
    for iv in (Zero(), Scale(3.0)):
        (fast, info), full = _effects(model, (ids,), "bert.encoder.layer.0.intermediate", unit_dim=-1, intervention=iv,
                                      additional_forward_args={"attention_mask": mask})
        assert info.path == "hooks" and info.linear_updates == ("'bert.encoder.layer.0.output.dense'",)
        torch.testing.assert_close(fast, full, rtol=0, atol=1e-10)
    assert updates["rows"] == 2 * (4 * 64 + TRIAL)  # every suffix row of both calls (4 samples x 64 neurons)


def test_llama_down_proj_input_neurons_equal_the_full_passes(updates):
    model = tiny_llama(layers=2, intermediate=16)
    ids, mask = token_batch(n=3, length=6)
    ids = ids % 30
    (fast, info), full = _effects(model, (ids,), "model.layers.0.mlp.down_proj:input", unit_dim=-1,
                                  additional_forward_args={"attention_mask": mask})
    torch.testing.assert_close(fast, full, rtol=0, atol=1e-10)
    assert updates["rows"] == 3 * 16 + TRIAL


def test_heads_wider_than_an_eighth_of_the_inputs_run_the_layer(updates):
    model = tiny_bert(layers=2)
    ids, mask = token_batch(n=3)
    (fast, info), full = _effects(model, (ids,), "bert.encoder.layer.0.attention.self", num_heads=4,
                                  additional_forward_args={"attention_mask": mask})
    torch.testing.assert_close(fast, full, rtol=0, atol=1e-10)
    assert info.linear_updates == ()
    assert updates["rows"] == 0  # a head is 8 of 32 inputs: the plain product is cheaper (and no trial is run)


class Mlp(nn.Module):
    """``down`` reads ``act``'s output; ``inplace`` doubles it in place first; ``skip`` adds it to the output too."""

    def __init__(self, inplace: bool = False, skip: bool = False, width: int = 24) -> None:
        super().__init__()
        self.up, self.act, self.down, self.head = nn.Linear(3, width), nn.Tanh(), nn.Linear(width, 5), nn.Linear(5, 2)
        self.inplace, self.skip = inplace, skip

    def forward(self, x):
        if not bool(torch.isfinite(x).all()):  # data-dependent control flow: torch.fx cannot trace it (the hook split runs)
            raise ValueError("non-finite input")
        h = self.act(self.up(x))
        if self.inplace:
            h.mul_(2.0)
        y = self.down(h)
        if self.skip:
            y = y + h[..., :5]
        return self.head(torch.relu(y)).sum(1)


def _mlp_case(**kw):
    torch.manual_seed(0)
    return Mlp(**kw).double().eval(), torch.randn(6, 4, 3, dtype=torch.float64)


@pytest.mark.parametrize("kw", [{}, {"skip": True}])
def test_a_layer_read_by_the_linear_and_by_other_code(kw, updates):
    model, x = _mlp_case(**kw)
    (fast, info), full = _effects(model, (x,), "act", unit_dim=-1)
    assert info.path == "hooks"
    torch.testing.assert_close(fast, full, rtol=0, atol=1e-12)
    assert updates["rows"] == 6 * 24 + TRIAL


def test_an_output_changed_in_place_before_the_linear_reads_it_runs_the_layer(updates):
    model, x = _mlp_case(inplace=True)
    (fast, _), full = _effects(model, (x,), "act", unit_dim=-1)
    torch.testing.assert_close(fast, full, rtol=0, atol=1e-12)
    assert updates["rows"] == 0  # the probe's `down` read 2h, not the cached h: never recorded


def test_an_edit_that_does_not_say_what_it_changed_runs_the_layer(updates):
    model, x = _mlp_case()
    with torch.no_grad(), audit_mode(model):
        cache = cache_prefix(model, x, "act", path="hooks")
        assert cache.linear.describe() == ["'down'"]
        rows = torch.tensor([5, 0, 0])
        before = updates["rows"]
        out = cache(lambda h: h * 0.5, rows)
        expected = model.head(torch.relu(model.down(model.act(model.up(x[rows])) * 0.5))).sum(1)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    assert updates["rows"] == before


def test_a_wrong_update_is_caught_by_the_trial_rows(monkeypatch):
    model, x = _mlp_case()
    monkeypatch.setattr(LinearReaders, "_update", lambda self, module, h, rows, columns, **_kw: self.outputs[module][rows])
    (fast, _), full = _effects(model, (x,), "act", unit_dim=-1)
    torch.testing.assert_close(fast, full, rtol=0, atol=1e-12)  # the update was dropped, not trusted


def test_a_layer_called_twice_updates_the_reader_of_its_first_output_only(updates):
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(3, 16), nn.Linear(3, 16)
            self.act = nn.Tanh()
            self.da, self.db = nn.Linear(16, 2), nn.Linear(16, 2)

        def forward(self, x):
            if not bool(torch.isfinite(x).all()):  # not traceable: the hook split runs
                raise ValueError("non-finite input")
            return self.da(self.act(self.a(x))) * self.db(self.act(self.b(x)))

    torch.manual_seed(0)
    model, x = Twice().double().eval(), torch.randn(5, 3, dtype=torch.float64)
    (fast, _), full = _effects(model, (x,), "act", unit_dim=-1)
    torch.testing.assert_close(fast, full, rtol=0, atol=1e-12)
    assert updates["rows"] == 5 * 16 + TRIAL


def test_max_share_bounds_the_units_answered(monkeypatch, updates):
    model, x = _mlp_case(width=24)
    monkeypatch.setattr(linear_update, "MAX_SHARE", 25)  # one unit of 24 is more than 1/25 of the inputs
    (fast, _), full = _effects(model, (x,), "act", unit_dim=-1)
    torch.testing.assert_close(fast, full, rtol=0, atol=1e-12)
    assert updates["rows"] == 0


def test_inference_mode_runs_the_layer_and_equals_the_full_passes(updates):
    model, x = _mlp_case()
    with torch.inference_mode():  # inference tensors have no version counter: nothing is recorded
        (fast, info), full = _effects(model, (x,), "act", unit_dim=-1)
    torch.testing.assert_close(fast, full, rtol=0, atol=1e-12)
    assert updates["rows"] == 0 and info.linear_updates == ()


def test_the_unit_importance_audit_records_the_updated_linear_layers():
    from lightning_causal.audits import Probe, UnitImportanceAudit

    model = tiny_bert(layers=2)
    ids, mask = token_batch()
    layers = ["bert.encoder.layer.0.intermediate", "bert.encoder.layer.0.attention.self"]
    result = UnitImportanceAudit(layers, unit_dim={layers[0]: -1}, num_heads={layers[1]: 4}).run(
        model, Probe(ids, additional_forward_args={"attention_mask": mask}))
    assert result.meta[f"linear_updates/{layers[0]}"] == ["'bert.encoder.layer.0.output.dense'"]
    assert f"linear_updates/{layers[1]}" not in result.meta  # heads: the plain product


def test_gpt2_conv1d_neurons_equal_the_full_passes(updates):
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(vocab_size=40, n_positions=16, n_embd=16, n_layer=2, n_head=2, num_labels=2,
                                     pad_token_id=0, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    torch.manual_seed(0)
    model = transformers.GPT2ForSequenceClassification(config).double().eval()  # mlp: c_fc, act, c_proj (Conv1D)
    ids, mask = token_batch(n=3, length=6)
    ids = ids % 40
    (fast, info), full = _effects(model, (ids,), "transformer.h.0.mlp.act", unit_dim=-1,
                                  additional_forward_args={"attention_mask": mask})
    torch.testing.assert_close(fast, full, rtol=0, atol=1e-10)
    assert info.linear_updates == ("'transformer.h.0.mlp.c_proj'",)
    assert updates["rows"] == 3 * 64 + TRIAL  # n_inner: 4 x 16


def test_cpu_autocast_runs_the_layer(updates):
    model, x = _mlp_case()
    model, x = model.float(), x.float()
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the layer's product in bfloat16: not the probe's float32 output
        (fast, info), full = _effects(model, (x,), "act", unit_dim=-1)
    torch.testing.assert_close(fast, full, rtol=0, atol=0)
    assert updates["rows"] == 0 and info.linear_updates == ()
