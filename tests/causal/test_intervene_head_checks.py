"""`intervene` with a head intervention makes the estimators' head checks: a whole layer or attention module
(its output comes after the output projection) is refused up front, and a grouped-query `v_proj` cut by the
query-head count warns at the first forward (its width is known only then)."""

import warnings

import pytest
import torch

from lightning_causal.causal import Zero, intervene

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def llama():
    torch.manual_seed(0)
    config = transformers.LlamaConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                                      num_key_value_heads=2, intermediate_size=64, pad_token_id=0)
    return transformers.LlamaForSequenceClassification(config).double().eval()


@pytest.mark.parametrize("site", ["model.layers.0", "model.layers.0.self_attn"])
def test_a_whole_layer_or_attention_module_is_refused_before_any_pass(llama, site):
    with pytest.raises(ValueError, match="holds an attention output projection"):
        with intervene(llama, {site: Zero(units=[0], num_heads=4)}):
            pytest.fail("the block must not run")
    assert all(not m._forward_hooks for m in llama.modules())


def test_query_head_count_on_a_grouped_value_projection_warns_at_the_first_pass(llama):
    ids = torch.randint(1, 50, (3, 5), generator=torch.Generator().manual_seed(1))
    site = "model.layers.0.self_attn.v_proj"
    with pytest.warns(UserWarning, match=r"2 heads of 8 .*num_heads=4 cuts them into slices of 4, parts of heads"):
        with intervene(llama, {site: Zero(units=[1], num_heads=4)}):
            got = llama(ids).logits
    # the intervention itself: features 4..7 of v_proj zeroed, as a hand-written hook does
    handle = llama.get_submodule(site).register_forward_hook(lambda _m, _i, out: out.index_fill(-1, torch.arange(4, 8), 0.0))
    try:
        expected = llama(ids).logits
    finally:
        handle.remove()
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with intervene(llama, {site: Zero(units=[1], num_heads=2)}):  # one unit per key/value head: no warning
            llama(ids)
