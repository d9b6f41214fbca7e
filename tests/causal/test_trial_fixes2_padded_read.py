"""A causal LM explained at its last position (`output=lambda out: out[:, -1]`) on a right-padded
probe reads a pad position for the shorter rows: every estimator warns, naming left padding and the
gather at `attention_mask.sum(1) - 1`; left padding and a last-real-token wrapper do not warn, and the
wrapper's effects equal a float64 loop that replaces each token by hand."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit, Probe
from lightning_causal.causal import input_effects, unit_effects


class TinyLM(nn.Module):
    """ids [N, T] (+ attention_mask) -> logits [N, T, V], causal attention over the real tokens."""

    def __init__(self, vocab: int = 7, d: int = 4) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.emb, self.pos = nn.Embedding(vocab, d), nn.Embedding(8, d)
        self.qk, self.mlp, self.head = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, vocab)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))

    def forward(self, ids, attention_mask):
        t = ids.shape[1]
        h = self.emb(ids) + self.pos(torch.arange(t))
        keep = torch.ones(t, t, dtype=torch.bool).tril() & attention_mask.bool().unsqueeze(1)
        s = (self.qk(h) @ h.transpose(1, 2)).masked_fill(~keep, -1e9)
        h = h + torch.softmax(s, -1) @ h
        return self.head(h + torch.relu(self.mlp(h)))


class LastRealToken(nn.Module):
    def __init__(self, lm):
        super().__init__()
        self.lm = lm

    def forward(self, ids, attention_mask):
        return self.lm(ids, attention_mask)[torch.arange(len(ids)), attention_mask.sum(1) - 1]


def _probe(left: bool):
    ids = torch.tensor([[1, 2, 3, 4, 5], [3, 1, 6, 0, 0], [2, 2, 5, 1, 0]])
    mask = (ids != 0).long()
    if left:  # the same sentences, their padding moved to the front
        ids = torch.stack([torch.cat([r[m == 0], r[m == 1]]) for r, m in zip(ids, mask)])
        mask = (ids != 0).long()
    return ids, mask


def _last(out):
    return out[:, -1]


def _warnings(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn()
    return result, [str(w.message) for w in caught if "padding" in str(w.message)]


def test_right_padding_read_at_the_last_position_warns():
    lm = TinyLM().eval()
    ids, mask = _probe(left=False)
    fm = torch.arange(5).expand(3, 5)
    args = {"attention_mask": mask}
    _, told = _warnings(lambda: input_effects(lm, ids, fm, baseline=0, target=2, output=_last, additional_forward_args=args))
    assert len(told) == 1 and "probe sample(s) [1, 2]" in told[0] and "position(s) [4]" in told[0]
    assert "padding_side = 'left'" in told[0] and "attention_mask.sum(1) - 1" in told[0]
    _, told = _warnings(lambda: unit_effects(lm, ids, "mlp", target=2, unit_dim=-1, output=_last, additional_forward_args=args))
    assert len(told) == 1 and "Intervening on 'mlp'" in told[0]
    _, told = _warnings(lambda: InputEffectAudit(output=_last, baseline=0, ace_values=None).run(lm, Probe(ids, None, args)))
    assert told and "probe sample(s) [1, 2]" in told[0]


@pytest.mark.parametrize("how", ["left", "wrapper"])
def test_last_real_token_reads_do_not_warn_and_match_a_float64_loop(how):
    lm = TinyLM().eval()
    ids, mask = _probe(left=how == "left")
    model, output = (lm, _last) if how == "left" else (LastRealToken(lm), None)
    fm = torch.arange(5).expand(3, 5)
    effects, told = _warnings(lambda: input_effects(model, ids, fm, baseline=0, target=2, output=output,
                                                    additional_forward_args={"attention_mask": mask}))
    assert told == []
    lm64 = TinyLM().double().eval()  # the hand-written loop in float64, read where the audited model reads
    ref = (lambda i, m: lm64(i, m)[:, -1]) if how == "left" else LastRealToken(lm64)
    with torch.no_grad():
        f0 = ref(ids, mask)[:, 2]
        for g in range(5):
            cut = ids.clone()
            cut[:, g] = torch.where(mask[:, g] == 1, torch.zeros_like(cut[:, g]), cut[:, g])
            expected = torch.where(mask[:, g] == 1, f0 - ref(cut, mask)[:, 2], torch.zeros_like(f0))
            torch.testing.assert_close(effects[:, g].double(), expected, atol=1e-5, rtol=1e-5)


def test_the_first_position_read_under_left_padding_warns_too():
    lm = TinyLM().eval()
    ids, mask = _probe(left=True)
    _, told = _warnings(lambda: input_effects(lm, ids, torch.arange(5).expand(3, 5), baseline=0, target=2,
                                              output=lambda out: out[:, 0], additional_forward_args={"attention_mask": mask}))
    assert len(told) == 1 and "position(s) [0]" in told[0] and "attention_mask.argmax(1)" in told[0]
