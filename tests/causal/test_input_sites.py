"""``"<module>:input"`` sites: a module's first input as an intervention site, attached
for the duration of a call (an ``nn.Identity`` child and a pre-hook) and removed afterwards, also
on errors. Every result must equal the same intervention on the module that produces that input,
or a brute-force pre-hook on the consuming module."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.audits import Probe, UnitImportanceAudit
from lightning_causal.causal import unit_effects
from lightning_causal.causal.engine.input_sites import CHILD, input_sites
from lightning_causal.causal.engine.interventions import (
    MeanOf,
    Zero,
    capture,
    intervene,
    resolve_module,
)
from tests.helpers.bert import tiny_bert, tiny_llama, token_batch


def _mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()


def _untouched(module: nn.Module) -> bool:
    return not hasattr(module, CHILD) and not module._forward_pre_hooks and not module._forward_hooks


def test_the_input_of_a_layer_gives_the_effects_of_the_layer_that_produces_it():
    m, x = _mlp(), torch.rand(5, 3, dtype=torch.float64)
    torch.testing.assert_close(unit_effects(m, x, "2:input"), unit_effects(m, x, "1"), rtol=0, atol=0)
    ref = torch.rand(7, 3, dtype=torch.float64)
    with capture(m, ["2:input", "1"]) as acts:
        m(ref)
    assert torch.equal(acts["2:input"], acts["1"])
    mean = MeanOf(acts["1"])
    torch.testing.assert_close(unit_effects(m, x, "2:input", mean), unit_effects(m, x, "1", mean), rtol=0, atol=0)
    with intervene(m, {"2:input": Zero(units=[1])}):
        got = m(x)
    with intervene(m, {"1": Zero(units=[1])}):
        torch.testing.assert_close(got, m(x), rtol=0, atol=0)
    assert _untouched(m[2]) and "2.lc_input_site" not in dict(m.named_modules())


def test_the_site_is_removed_on_errors_and_exists_only_inside_the_calls():
    m = _mlp()
    with pytest.raises(RuntimeError, match="boom"), intervene(m, {"2:input": Zero()}):
        assert hasattr(m[2], CHILD)
        raise RuntimeError("boom")
    assert _untouched(m[2])
    with pytest.raises(ValueError, match="attached"):
        resolve_module(m, "2:input")
    with pytest.raises(ValueError, match="Unknown module name '3'"):
        unit_effects(m, torch.rand(2, 3, dtype=torch.float64), "3:input")


def test_a_module_called_with_keywords_only_takes_the_keyword_of_its_first_parameter():
    class Kw(nn.Module):
        def __init__(self, by_keyword: bool):
            super().__init__()
            self.fc, self.out, self.by_keyword = nn.Linear(3, 4), nn.Linear(4, 2), by_keyword

        def forward(self, x):
            h = torch.relu(self.fc(x))
            return self.out(input=h) if self.by_keyword else self.out(h)

    torch.manual_seed(0)
    kw = Kw(True).double()
    pos = Kw(False).double()
    pos.load_state_dict(kw.state_dict())
    x = torch.rand(5, 3, dtype=torch.float64)
    got = unit_effects(kw, x, "out:input", Zero(), target=1)
    assert torch.equal(got, unit_effects(pos, x, "out:input", Zero(), target=1))
    with torch.no_grad():
        h = torch.relu(kw.fc(x))
        ref = torch.stack([kw.out(h)[:, 1] - kw.out(h.index_fill(1, torch.tensor([u]), 0.0))[:, 1] for u in range(4)], 1)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)
    assert _untouched(kw.out)


def test_a_module_called_without_its_first_input_is_refused_with_the_site_name():
    class Star(nn.Module):
        def forward(self, *args, **kwargs):
            return kwargs["a"] * 2

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.star = nn.Linear(3, 2), Star()

        def forward(self, x):
            return self.star(a=self.fc(x))

    model = Model().double()
    with pytest.raises(ValueError, match=r"'star'.*'star:input'.*first positional argument, but.*\['a'\]"):
        unit_effects(model, torch.rand(2, 3, dtype=torch.float64), "star:input")
    assert _untouched(model.star)


def test_sequence_inputs_of_a_linear_layer_refuse_positions_as_default_units():
    m = _mlp()
    x = torch.rand(4, 6, 3, dtype=torch.float64)
    wrapped = nn.Sequential(m, nn.Flatten(1)).double()  # [N, T, 2] -> [N, 2T] logits: positions x classes
    with pytest.raises(ValueError, match="unit_dim=-1"):
        unit_effects(wrapped, x, "0.2:input")
    torch.testing.assert_close(unit_effects(wrapped, x, "0.2:input", unit_dim=-1),
                               unit_effects(wrapped, x, "0.1", unit_dim=-1), rtol=0, atol=0)


def test_unit_importance_audit_takes_an_input_site():
    m, x = _mlp(), torch.rand(6, 3, dtype=torch.float64)
    r = UnitImportanceAudit(["2:input"], top_k=2).run(m, Probe(x))
    torch.testing.assert_close(r.vectors["importance/2:input"], unit_effects(m, x, "1").abs().mean(0))
    assert _untouched(m[2])


def test_heads_of_transformers_attention_are_the_input_of_the_output_projection():
    """transformers >= 5 attention combines the heads in functional code; the input of ``o_proj``
    holds them side by side. Zero and mean ablation per head equal a brute-force pre-hook."""
    transformers = pytest.importorskip("transformers")
    config = transformers.ViTConfig(image_size=8, patch_size=4, num_channels=1, hidden_size=16, num_hidden_layers=1,
                                    num_attention_heads=4, intermediate_size=32, num_labels=3)
    torch.manual_seed(0)
    model = transformers.ViTForImageClassification(config).double().eval()
    proj = next((n for n, m in model.named_modules() if n.endswith("o_proj") or n.endswith("attention.output.dense")), None)
    assert proj is not None
    site, module = f"{proj}:input", resolve_module(model, proj)
    x = torch.rand(5, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    ref = torch.rand(6, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with capture(model, [site]) as acts, torch.no_grad():
        model(ref)
    mean = acts[site].mean(0)
    zero = unit_effects(model, x, site, num_heads=4, target=0)
    meaned = unit_effects(model, x, site, MeanOf(acts[site]), num_heads=4, target=0)
    with torch.no_grad():
        full = model(x).logits[:, 0]
        for h in range(4):
            for got, value in ((zero, None), (meaned, mean)):
                def patch(_m, args, h=h, value=value):
                    z = args[0].clone()
                    z[..., 4 * h:4 * (h + 1)] = 0 if value is None else value[..., 4 * h:4 * (h + 1)]
                    return (z, *args[1:])
                handle = module.register_forward_pre_hook(patch)
                try:
                    torch.testing.assert_close(got[:, h], full - model(x).logits[:, 0])
                finally:
                    handle.remove()
    assert zero.abs().max() > 0 and not torch.allclose(zero, meaned)
    assert _untouched(module)



def test_heads_on_the_output_of_an_output_projection_are_refused_naming_its_input_site():
    """``num_heads`` on ``o_proj`` itself (``:input`` forgotten) ranked two halves of the projected
    output as "heads" (a random tiny ViT: 0.016 and 0.029, where the heads give 0.020 and 0.022):
    its output mixes the heads. Refused everywhere it is read, naming the input site; the input site still works."""
    transformers = pytest.importorskip("transformers")
    config = transformers.ViTConfig(image_size=8, patch_size=4, num_channels=1, hidden_size=16, num_hidden_layers=1,
                                    num_attention_heads=2, intermediate_size=32, num_labels=3)
    torch.manual_seed(0)
    model = transformers.ViTForImageClassification(config).eval()
    proj = next(n for n, _ in model.named_modules() if n.endswith(("o_proj", "attention.output.dense")))  # transformers 5, 4
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    match = rf"{proj}' is an attention output projection.*name the site '{proj}:input'"
    with pytest.raises(ValueError, match=match):
        unit_effects(model, x, proj, num_heads=2)
    with pytest.raises(ValueError, match=match), intervene(model, {proj: Zero(units=[0], num_heads=2)}):
        model(x)
    with pytest.raises(ValueError, match=match):
        UnitImportanceAudit([proj], num_heads=2).run(model, Probe(x))
    assert unit_effects(model, x, f"{proj}:input", num_heads=2).shape == (4, 2)
    assert unit_effects(model, x, proj, unit_dim=-1).shape == (4, 16)  # its output features stay units

def test_nested_blocks_share_one_attached_site():
    m = _mlp()
    with input_sites(m, ["2:input"]):
        site = resolve_module(m, "2:input")
        with capture(m, ["2:input"]) as acts:
            m(torch.rand(2, 3, dtype=torch.float64))
        assert resolve_module(m, "2:input") is site and acts["2:input"].shape == (2, 4)
    assert _untouched(m[2])


def test_backdoor_suspects_and_the_unit_path_take_an_input_site():
    from lightning_causal.causal.backdoor.suspects import suspect_units
    from lightning_causal.causal.backdoor.triggers import Trigger
    from lightning_causal.repair import BackdoorSuppressionTerm

    m, x = _mlp(), torch.rand(12, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    trigger = Trigger(torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64), torch.tensor([0.0, 3.0, 0.0], dtype=torch.float64), target=1)
    got, want = suspect_units(m, x, trigger, "2:input"), suspect_units(m, x, trigger, "1")
    torch.testing.assert_close(got.score, want.score, rtol=0, atol=0)
    assert got.score.abs().max() > 0
    y = torch.zeros(12, dtype=torch.long)
    parts = {"unlearn_weight": 0.0, "distill_weight": 0.0, "path": "units", "augment": None}
    loss = BackdoorSuppressionTerm(trigger, suspects={"2:input": [0, 2]}, **parts).loss(m, x, y)
    torch.testing.assert_close(loss, BackdoorSuppressionTerm(trigger, suspects={"1": [0, 2]}, **parts).loss(m, x, y), rtol=0, atol=0)
    assert float(loss.detach()) > 0 and _untouched(m[2])


def test_llama_heads_and_mlp_neurons_with_padding_equal_brute_force_pre_hooks():
    """A Llama-style decoder with an attention mask (half the batch padded): the heads (``o_proj``'s
    input) and MLP neurons (``down_proj``'s input) per unit equal a pre-hook that zeroes them."""
    model = tiny_llama()
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 30, (4, 7), generator=g)
    mask = torch.ones(4, 7, dtype=torch.long)
    ids[:2, 5:], mask[:2, 5:] = 0, 0
    afa = {"attention_mask": mask}
    layer = model.model.layers[1]
    for site, module, units, width, layout in (("model.layers.1.self_attn.o_proj:input", layer.self_attn.o_proj, 4, 4, {"num_heads": 4}),
                                               ("model.layers.1.mlp.down_proj:input", layer.mlp.down_proj, 12, 1, {"unit_dim": -1})):
        got = unit_effects(model, ids, site, target=2, additional_forward_args=afa, **layout)
        assert got.shape == (4, units)
        with torch.no_grad():
            full = model(ids, attention_mask=mask).logits[:, 2]
            for u in range(units):
                def zero(_m, args, u=u, width=width):
                    z = args[0].clone()
                    z[..., width * u:width * (u + 1)] = 0
                    return (z, *args[1:])
                handle = module.register_forward_pre_hook(zero)
                try:
                    torch.testing.assert_close(got[:, u], full - model(ids, attention_mask=mask).logits[:, 2])
                finally:
                    handle.remove()
        assert got.abs().max() > 0 and _untouched(module)


def test_swin_window_attention_heads_fold_the_windows_and_equal_brute_force_hooks():
    """Swin's attention runs on ``[N·windows, T, D]``: ``o_proj:input`` has 4 rows per sample here.
    It was refused with advice about ``batch_first`` and experts only, then with the folded windows
    named; ``unit_effects`` now takes the folded layer (a head is the head in every window of the
    sample) and equals a brute-force hook, as ``mlp.fc1``'s neurons do. Estimators that need one row
    per sample still refuse it, naming the folded windows."""
    transformers = pytest.importorskip("transformers")
    config = transformers.SwinConfig(image_size=8, patch_size=2, num_channels=1, embed_dim=8, depths=[1],
                                     num_heads=[2], window_size=2, num_labels=3)
    torch.manual_seed(0)
    model = transformers.SwinForImageClassification(config).double().eval()
    block = next(n for n, _ in model.named_modules() if n.endswith("blocks.0"))
    names = [n for n, _ in model.named_modules() if n.startswith(f"{block}.")]
    proj = next(n for n in names if n.endswith(("attention.o_proj", "attention.output.dense")))  # transformers 5, 4
    fc1_name = next(n for n in names if n.endswith(("mlp.fc1", "intermediate.dense")))  # transformers 5, 4
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    from lightning_causal.causal import causal_graph

    with pytest.raises(ValueError, match=r"4 rows per sample.*window attention folds its windows.*mlp.fc1' with unit_dim=-1"):
        causal_graph(model, x, [f"{proj}:input"], num_heads=2, target=0)
    heads, info = unit_effects(model, x, f"{proj}:input", num_heads=2, target=0, return_info=True)
    assert info.path == "full" and "folds 4 rows per sample" in info.reason
    o_proj = resolve_module(model, proj)
    with torch.no_grad():
        full = model(x).logits[:, 0]
        for j in range(2):  # head j: columns [4j, 4j + 4) of the input of every window's o_proj
            def zero_head(_m, args, j=j):
                h = args[0].clone()
                h[..., 4 * j:4 * j + 4] = 0.0
                return (h,)
            handle = o_proj.register_forward_pre_hook(zero_head)
            try:
                torch.testing.assert_close(heads[:, j], full - model(x).logits[:, 0])
            finally:
                handle.remove()
    got = unit_effects(model, x, fc1_name, unit_dim=-1, target=0)
    fc1 = resolve_module(model, fc1_name)
    with torch.no_grad():
        full = model(x).logits[:, 0]
        for j in (0, 5, got.shape[1] - 1):
            handle = fc1.register_forward_hook(lambda _m, _i, out, j=j: out.index_fill(-1, torch.tensor([j]), 0.0))
            try:
                torch.testing.assert_close(got[:, j], full - model(x).logits[:, 0])
            finally:
                handle.remove()


def test_heads_on_bert_attention_output_dense_are_refused_naming_its_input_site():
    """BERT's output projection is ``attention.output.dense`` (``dense`` also names its MLP layers):
    ``num_heads=4`` on it ranked four slices of the projected output as heads, with no error."""
    model = tiny_bert(layers=1)
    ids, mask = token_batch()
    proj = "bert.encoder.layer.0.attention.output.dense"
    with pytest.raises(ValueError, match=rf"{proj}' is an attention output projection.*name the site '{proj}:input'"):
        unit_effects(model, ids, proj, num_heads=4, additional_forward_args={"attention_mask": mask})
    heads = unit_effects(model, ids, f"{proj}:input", num_heads=4, additional_forward_args={"attention_mask": mask})
    same = unit_effects(model, ids, "bert.encoder.layer.0.attention.self", num_heads=4, additional_forward_args={"attention_mask": mask})
    assert heads.shape == (5, 4) and torch.allclose(heads, same)  # the input site holds the heads of attention.self
    assert unit_effects(model, ids, proj, unit_dim=-1, additional_forward_args={"attention_mask": mask}).shape == (5, 32)


def test_opt_mlp_neurons_fold_the_positions_and_equal_brute_force_hooks():
    """OPT's decoder layer runs its MLP on ``[N·T, D]``: ``fc1``'s neurons were refused; they now run
    on full passes and equal a brute-force hook (padding included), and the other sites still work."""
    transformers = pytest.importorskip("transformers")
    from lightning_causal.causal import unit_effects

    config = transformers.OPTConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, ffn_dim=32, num_attention_heads=2,
                                    max_position_embeddings=32, num_labels=2, pad_token_id=1, word_embed_proj_dim=16)
    torch.manual_seed(0)
    model = transformers.OPTForSequenceClassification(config).double().eval()
    ids = torch.randint(2, 50, (3, 6))
    mask = torch.ones_like(ids)
    ids[0, 4:], mask[0, 4:] = 1, 0
    got = unit_effects(model, ids, "model.decoder.layers.0.fc1", target=1, additional_forward_args={"attention_mask": mask})
    fc1 = model.model.decoder.layers[0].fc1
    with torch.no_grad():
        full = model(ids, attention_mask=mask).logits[:, 1]
        for j in (0, 7, 31):
            handle = fc1.register_forward_hook(lambda _m, _i, out, j=j: out.index_fill(-1, torch.tensor([j]), 0.0))
            try:
                torch.testing.assert_close(got[:, j], full - model(ids, attention_mask=mask).logits[:, 1], rtol=0, atol=1e-12)
            finally:
                handle.remove()
    assert got.abs().max() > 1e-4
    for site, layout in (("model.decoder.layers.0.self_attn.out_proj:input", {"num_heads": 2}), ("model.decoder.layers.0", {"unit_dim": -1})):
        fast = unit_effects(model, ids, site, **layout)  # the advised sites run, and equal full passes
        torch.testing.assert_close(fast, unit_effects(model, ids, site, use_suffix=False, **layout), rtol=0, atol=1e-10)
