"""The tail of a sequence model run at the positions its output reads: which modules qualify, and
every effect computed that way equals the full forward passes."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import Zero, unit_effects
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.prefix_cache import cache_prefix
from lightning_causal.causal.engine.read_positions import _positions, find_read_slices
from lightning_causal.causal.engine.state import audit_mode
from tests.helpers.bert import tiny_bert, tiny_llama, token_batch
from tests.helpers.models import all_hook_counts

T, D = 6, 3


class Mixer(nn.Module):
    """Mixes the positions: ``[N, T, D] -> [N, T, D]``."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(T, T)

    def forward(self, x):
        return torch.tanh(self.lin(x.transpose(1, 2)).transpose(1, 2))


class FirstPosition(nn.Module):
    """A mixer, a position-wise tail, and a head that reads position 0 (a [CLS] classifier)."""

    def __init__(self) -> None:
        super().__init__()
        self.mix, self.tail, self.head = Mixer(), nn.Sequential(nn.Linear(D, D), nn.Tanh()), nn.Linear(D, 2)

    def forward(self, x):
        return self.head(self.tail(self.mix(x))[:, 0])


class MaxOverPositions(FirstPosition):
    """The same tail read through a max over positions: which position counts depends on the values."""

    def forward(self, x):
        return self.head(self.tail(self.mix(x)).amax(1))


class FullLengthReshape(FirstPosition):
    """The tail reshapes to the full length before reading position 0: cutting it fails."""

    def forward(self, x):
        h = self.tail(self.mix(x))
        return self.head(h.reshape(x.shape[0], T, D)[:, 0])


class ReadsWherePointed(FirstPosition):
    """The head reads each sample's position ``pos`` (a per-sample forward argument)."""

    def forward(self, x, pos):
        return self.head(self.tail(self.mix(x))[torch.arange(x.shape[0]), pos])


def _model(cls, seed=0):
    torch.manual_seed(seed)
    return cls().double().eval()


X = torch.randn(5, T, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def test_a_tail_read_at_one_position_runs_there_only_and_gives_the_same_effects():
    model = _model(FirstPosition)
    reads = find_read_slices(Forward(model), (X,), model.mix)
    assert [(s.name, s.positions.tolist(), s.length) for s in reads.slices] == [("tail", [0], T)]
    seen = []
    handle = model.tail[0].register_forward_hook(lambda _m, i, _o: seen.append(i[0].shape))
    with torch.no_grad(), reads.applied():
        sliced = model(X)
    handle.remove()
    assert seen == [torch.Size([5, 1, D])]  # the tail ran at position 0 only
    torch.testing.assert_close(sliced, model(X), atol=1e-12, rtol=0)
    assert all_hook_counts(model) == 0
    with audit_mode(model):
        hooks = cache_prefix(model, X, "mix", path="hooks", rows_per_sample=8)  # a traced graph ("fx") is never cut
        full = cache_prefix(model, X, "mix", path="full")
    assert hooks.reads.describe() == ["'tail' at positions [0] of 6"] and not full.reads
    rows = torch.tensor([0, 4, 4, 2])
    moved = torch.randn(4, T, D, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    torch.testing.assert_close(hooks(moved, rows), full(moved, rows), atol=1e-12, rtol=0)
    assert all_hook_counts(model) == 0


def test_a_position_read_by_samples_the_checks_did_not_see_is_caught_on_the_whole_probe():
    model = _model(ReadsWherePointed)
    x = torch.randn(12, T, D, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    pos = torch.zeros(12, dtype=torch.long)
    pos[[4, 7, 10]] = 3  # not among the check rows (0, 2, 3, 5, 6, 8, 9, 11) nor the trial rows (0, 1)
    reads = find_read_slices(Forward(model, additional_forward_args=(pos,), num_samples=12), (x,), model.mix)
    assert reads.describe() == ["'tail' at positions [0] of 6"]  # what the check rows show
    with audit_mode(model):
        hooks = cache_prefix(model, x, "mix", path="hooks", additional_forward_args=(pos,), rows_per_sample=8)
        full = cache_prefix(model, x, "mix", path="full", additional_forward_args=(pos,))
    assert not hooks.reads  # samples 4, 7 and 10 read position 3: the probe run's check drops the cut
    rows = torch.arange(12)
    moved = torch.randn(12, T, D, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    torch.testing.assert_close(hooks(moved, rows), full(moved, rows), atol=1e-12, rtol=0)


def test_a_position_that_counts_only_through_a_max_is_not_cut():
    model = _model(MaxOverPositions)
    # position 2 holds the maximum of every feature on these samples: the gradient reads it alone
    with torch.no_grad():
        model.mix.lin.weight.zero_()
        model.mix.lin.bias.copy_(torch.tensor([-3.0, -3.0, 3.0, -3.0, -3.0, -3.0], dtype=torch.float64))
        model.mix.lin.weight[:, 0] = 0.1
        model.tail[0].weight.copy_(torch.eye(D))  # monotone per feature: the maximum stays at position 2
        model.tail[0].bias.zero_()
    reads = find_read_slices(Forward(model), (X,), model.mix)
    assert not reads  # large values written elsewhere move the max: refused by the noise check
    fast = unit_effects(model, X, "mix", unit_dim=1, target=0)  # intervening on positions moves the max
    full = unit_effects(model, X, "mix", unit_dim=1, target=0, use_suffix=False)
    torch.testing.assert_close(fast, full, atol=1e-12, rtol=0)


def test_a_tail_that_needs_the_full_length_is_not_cut_and_nothing_leaks():
    model = _model(FullLengthReshape)
    reads = find_read_slices(Forward(model), (X,), model.mix)
    assert not reads  # the gradient reads position 0 of 'tail' alone, but the reshape refuses the cut
    assert all_hook_counts(model) == 0


def test_bert_runs_its_last_layer_at_the_cls_position_and_the_effects_equal_full_passes():
    model = tiny_bert(layers=3)
    ids, mask = token_batch(n=6)
    afa = {"attention_mask": mask}
    layer = "bert.encoder.layer.0.intermediate"  # 64 neurons: 64 suffix rows per sample
    fast, info = unit_effects(model, ids, layer, unit_dim=-1, return_info=True, additional_forward_args=afa)
    full = unit_effects(model, ids, layer, unit_dim=-1, use_suffix=False, additional_forward_args=afa)
    assert info.path == "hooks"
    assert info.read_positions[0] == "'bert.encoder.layer.2.attention.output' at positions [0] of 7"
    assert info.to_dict()["read_positions"] == list(info.read_positions)
    torch.testing.assert_close(fast, full, atol=1e-10, rtol=0)
    assert all_hook_counts(model) == 0


@pytest.mark.parametrize(("units", "cut"), [(None, False), ([0, 1, 2], False), (None, True)])
def test_the_cut_is_looked_for_from_8_suffix_rows_per_sample(units, cut):
    model = tiny_bert(layers=3)
    ids, mask = token_batch(n=6)
    afa = {"attention_mask": mask}
    layer = "bert.encoder.layer.0.attention.self"
    ivs = [Zero(units=units, num_heads=4)] * (2 if cut else 1)  # 4 heads: 4 rows per sample; a 2-point grid: 8
    fast, info = unit_effects(model, ids, layer, ivs, return_info=True, additional_forward_args=afa)
    full = unit_effects(model, ids, layer, ivs, use_suffix=False, additional_forward_args=afa)
    assert bool(info.read_positions) == cut
    torch.testing.assert_close(fast, full, atol=1e-10, rtol=0)


def test_the_unit_importance_audit_records_the_modules_run_at_read_positions():
    from lightning_causal.audits import Probe, UnitImportanceAudit

    model = tiny_bert(layers=2)
    ids, mask = token_batch()
    result = UnitImportanceAudit(["bert.encoder.layer.0.intermediate"], unit_dim=-1).run(
        model, Probe(ids, additional_forward_args={"attention_mask": mask}))
    assert result.meta["path/bert.encoder.layer.0.intermediate"] == "hooks"
    assert result.meta["read_positions/bert.encoder.layer.0.intermediate"][0].startswith("'bert.encoder.layer.1.attention.output'")


def test_the_full_path_is_never_cut():
    model = tiny_bert(layers=2)
    ids, mask = token_batch()
    with audit_mode(model):
        cache = cache_prefix(model, ids, "bert.encoder.layer.0.intermediate", path="full",
                             additional_forward_args={"attention_mask": mask})
    assert cache.path == "full" and not cache.reads


def test_a_decoder_read_at_its_last_token_equals_full_passes():
    model = tiny_llama(vocab=50, intermediate=32, heads=2, classes=2)
    ids = torch.randint(1, 50, (4, 5), generator=torch.Generator().manual_seed(2))  # no padding: the last token everywhere
    layer = "model.layers.0.mlp.down_proj:input"
    fast, info = unit_effects(model, ids, layer, unit_dim=-1, target=1, return_info=True)
    full = unit_effects(model, ids, layer, unit_dim=-1, target=1, use_suffix=False)
    assert any("at positions [4] of 5" in line for line in info.read_positions), info.read_positions
    torch.testing.assert_close(fast, full, atol=1e-10, rtol=0)
    assert fast.abs().max() > 1e-6


@pytest.mark.parametrize(("layer", "layout", "cut"), [
    ("model.layers.0.mlp.down_proj:input", {"unit_dim": -1}, True),
    ("model.layers.0.self_attn.o_proj:input", {"num_heads": 2}, False),  # 2 rows per sample: not looked for
])
def test_a_decoder_under_right_padding_reads_each_sample_s_last_token(layer, layout, cut):
    model = tiny_llama(vocab=50, intermediate=32, heads=2, classes=2)
    ids = torch.randint(1, 50, (6, 7), generator=torch.Generator().manual_seed(2))
    mask = torch.ones_like(ids)
    mask[:3, 4:] = 0  # half the batch padded on the right: the last real token is 3 there, 6 elsewhere
    ids[:3, 4:] = 0
    afa = {"attention_mask": mask}
    fast, info = unit_effects(model, ids, layer, target=1, return_info=True, additional_forward_args=afa, **layout)
    full = unit_effects(model, ids, layer, target=1, use_suffix=False, additional_forward_args=afa, **layout)
    assert any("per sample" in line for line in info.read_positions) == cut, info.read_positions
    torch.testing.assert_close(fast, full, atol=1e-10, rtol=0)
    assert fast.abs().max() > 1e-4
    assert all_hook_counts(model) == 0


def test_read_positions_from_gradients_by_hand():
    grad = torch.zeros(3, 5, 2)
    grad[:, 0, 1] = 1.0
    assert _positions(grad).tolist() == [0]  # the same position in every row
    grad = torch.zeros(3, 5, 2)
    grad[0, 4, 0], grad[1, 2, 1], grad[2, 4, 1] = 1.0, -2.0, 3.0
    assert _positions(grad).tolist() == [[4], [2], [4]]  # one position per row, its own
    grad[1, 3, 0] = 1.0
    assert _positions(grad) is None  # counts differ
    assert _positions(torch.ones(2, 5, 2)) is None  # every position read: nothing to cut


def test_inference_mode_skips_the_gradient_checks_and_cuts_nothing():
    model = tiny_bert(layers=2)
    ids, mask = token_batch()
    afa = {"attention_mask": mask}
    with torch.inference_mode():
        fast, info = unit_effects(model, ids, "bert.encoder.layer.0.intermediate", unit_dim=-1, return_info=True,
                                  additional_forward_args=afa)
    full = unit_effects(model, ids, "bert.encoder.layer.0.intermediate", unit_dim=-1, use_suffix=False, additional_forward_args=afa)
    assert info.path == "hooks" and info.read_positions == ()
    torch.testing.assert_close(fast, full, atol=1e-10, rtol=0)
    assert all_hook_counts(model) == 0
