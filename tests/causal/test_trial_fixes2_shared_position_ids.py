"""A 1-D `position_ids` `[T]` forward argument (one position per token, shared by every row, as
Hugging Face models broadcast it) is passed whole to every pass: with as many sentences as tokens it
was gathered by row (N == T) and the estimators failed; with fewer tokens than sentences it was read
as indices linking the samples. Effects equal a float64 loop with plain forward hooks and input edits."""

import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit, Probe, UnitImportanceAudit
from lightning_causal.baselines import attribute
from lightning_causal.causal import input_effects, unit_effects
from lightning_causal.causal.engine.forward_args import ForwardArgs
from lightning_causal.causal.engine.linked_samples import linked_arguments

N = T = 5


class PositionsLM(nn.Module):
    """ids [N, T] -> logits [N, T, V], positions from `position_ids` (default 0..T-1)."""

    def __init__(self, vocab: int = 7, d: int = 4) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.emb, self.pos = nn.Embedding(vocab, d), nn.Embedding(12, d)
        self.mix, self.mlp, self.head = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, vocab)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))

    def forward(self, ids, position_ids=None):
        t = ids.shape[1]
        h = self.emb(ids) + self.pos(torch.arange(t) if position_ids is None else position_ids)
        h = h + torch.tril(torch.ones(t, t, dtype=h.dtype)) @ torch.tanh(self.mix(h)) / t
        return self.head(h + torch.relu(self.mlp(h)))


def _last(out):
    return out[:, -1]


def _data():
    ids = torch.randint(1, 7, (N, T), generator=torch.Generator().manual_seed(1))
    return ids, torch.arange(T) + 3  # positions offset: the default ones would give other numbers


def _reference_tokens(ids, pos, target):
    lm = PositionsLM().double().eval()
    with torch.no_grad():
        f0 = lm(ids, position_ids=pos)[:, -1, target]
        return torch.stack([f0 - lm(ids.index_fill(1, torch.tensor([g]), 0), position_ids=pos)[:, -1, target]
                            for g in range(T)], 1)


def _reference_units(ids, pos, target):
    lm = PositionsLM().double().eval()
    cols = []
    with torch.no_grad():
        f0 = lm(ids, position_ids=pos)[:, -1, target]
        for u in range(4):
            handle = lm.mlp.register_forward_hook(lambda mod, inp, out, u=u: out.index_fill(-1, torch.tensor([u]), 0.0))
            try:
                cols.append(f0 - lm(ids, position_ids=pos)[:, -1, target])
            finally:
                handle.remove()
    return torch.stack(cols, 1)


def test_shared_position_ids_with_as_many_sentences_as_tokens_match_a_float64_loop():
    lm = PositionsLM().eval()
    ids, pos = _data()
    args = {"position_ids": pos}
    fm = torch.arange(T).expand(N, T)
    tokens = _reference_tokens(ids, pos, 2)
    effects = input_effects(lm, ids, fm, baseline=0, target=2, output=_last, additional_forward_args=args)
    torch.testing.assert_close(effects.double(), tokens, atol=1e-5, rtol=1e-5)
    units = unit_effects(lm, ids, "mlp", target=2, unit_dim=-1, output=_last, additional_forward_args=args)
    torch.testing.assert_close(units.double(), _reference_units(ids, pos, 2), atol=1e-5, rtol=1e-5)
    captum = attribute(lm, ids, "FeatureAblation", target=2, output=_last, additional_forward_args=args,
                       feature_mask=fm, baselines=0)
    torch.testing.assert_close(captum.double(), tokens, atol=1e-5, rtol=1e-5)


def test_audits_pass_shared_position_ids_whole():
    lm = PositionsLM().eval()
    ids, pos = _data()
    probe = Probe(ids, None, {"position_ids": pos})
    assert probe.subset(torch.tensor([0, 2])).additional_forward_args["position_ids"] is pos
    audit = InputEffectAudit(output=_last, baseline=0, target=2, ace_values=None)
    audit.dry_run(lm, probe)
    result = audit.run(lm, probe)
    torch.testing.assert_close(result.vectors["mean_abs_effect"].double(), _reference_tokens(ids, pos, 2).abs().mean(0),
                               atol=1e-5, rtol=1e-5)
    UnitImportanceAudit(["mlp"], output=_last, target=2, unit_dim=-1).run(lm, probe)


def test_shared_position_ids_link_no_samples():
    assert linked_arguments(ForwardArgs({"position_ids": torch.arange(3)}, num_samples=8)) == []
    # a per-sample position_ids [N, T] still follows its rows; an edge list still links them
    fa = ForwardArgs({"position_ids": torch.arange(3).expand(8, 3)}, num_samples=8)
    assert fa.take(torch.tensor([1]))[1]["position_ids"].shape == (1, 3)
    assert linked_arguments(ForwardArgs({"edge_index": torch.tensor([[0, 1], [1, 2]])}, num_samples=8))
