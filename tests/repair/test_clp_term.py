"""Counterfactual logit pairing (CLP, Garg et al. 2019): CounterfactualFairnessTerm(TokenSwap(...))
by hand, with an attention mask, inside CausalRepairModule, and a fine-tune that closes the gap."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lightning_causal.causal import TokenSwap, counterfactual_fairness_gap
from lightning_causal.repair.fairness import CounterfactualFairnessTerm
from lightning_causal.repair.module import CausalRepairModule
from tests.helpers.text import tiny_bert_classifier, token_batch

HE, SHE = 10, 11


def _ids():
    ids, att = token_batch(5, 8, seed=3)
    ids[(ids == HE) | (ids == SHE)] = 20
    ids[0, 2], ids[1, 3], ids[3, 1] = HE, SHE, HE  # sentences 2 and 4 have no identity term
    return ids, att


@pytest.mark.parametrize("classes", [2, 3])
def test_clp_loss_by_hand_with_an_attention_mask(classes):
    model = tiny_bert_classifier(seed=2, classes=classes)
    ids, att = _ids()
    swap = TokenSwap([(HE, SHE)])
    term = CounterfactualFairnessTerm(swap)
    assert term.distance == "logit"  # CLP is the default for token swaps
    loss = term.loss(model, ids, None, additional_forward_args={"attention_mask": att})
    with torch.no_grad():
        z = model(ids, attention_mask=att).logits
        z_cf = model(swap(ids), attention_mask=att).logits
    d = z - z_cf
    per_row = (d - d.mean(1, keepdim=True)).abs().sum(1)  # centred logits, L1
    if classes == 2:  # Garg et al.: |g(x) - g(x')| with g = z1 - z0
        torch.testing.assert_close(per_row, ((z[:, 1] - z[:, 0]) - (z_cf[:, 1] - z_cf[:, 0])).abs())
    assert torch.equal(per_row[[2, 4]], torch.zeros(2, dtype=per_row.dtype))
    torch.testing.assert_close(loss, per_row.mean(), atol=1e-10, rtol=0)  # mean over the whole batch
    assert loss.requires_grad
    # abs_prob on the same pairs: the audited gap times the share of changed sentences
    prob = CounterfactualFairnessTerm(swap, distance="abs_prob").loss(model, ids, None, additional_forward_args={"attention_mask": att})
    if classes == 2:
        gap = counterfactual_fairness_gap(model, ids, swap, target=1, additional_forward_args={"attention_mask": att})
        assert float(prob.detach()) == pytest.approx(gap["mean_abs"] * gap["changed"], abs=1e-10)


def test_a_batch_without_identity_terms_costs_nothing():
    model = tiny_bert_classifier(seed=2)
    ids, att = _ids()
    plain = ids[[2, 4]]
    loss = CounterfactualFairnessTerm(TokenSwap([(HE, SHE)])).loss(model, plain, None, additional_forward_args={"attention_mask": att[[2, 4]]})
    assert float(loss) == 0.0


def test_repair_module_passes_the_attention_mask_to_the_term():
    model = tiny_bert_classifier(seed=2).float().train()
    model.config.hidden_dropout_prob = model.config.attention_probs_dropout_prob = 0.0
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
        if hasattr(m, "dropout_prob"):  # transformers 4's SDPA attention copies the config's dropout at construction
            m.dropout_prob = 0.0
    ids, att = _ids()
    labels = torch.tensor([0, 1, 1, 0, 1])
    term = CounterfactualFairnessTerm(TokenSwap([(HE, SHE)]), weight=2.0)
    module = CausalRepairModule(model, [term])
    total, logs = module.objective({"input_ids": ids, "attention_mask": att, "labels": labels})
    with torch.no_grad():
        z = model(ids, attention_mask=att).logits
        z_cf = model(TokenSwap([(HE, SHE)])(ids), attention_mask=att).logits
        g, g_cf = z[:, 1] - z[:, 0], z_cf[:, 1] - z_cf[:, 0]
    clp = (g - g_cf).abs().mean()
    torch.testing.assert_close(logs["repair/counterfactual_fairness"], clp, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(total.detach(), F.cross_entropy(z, labels) + 2.0 * clp, atol=1e-5, rtol=1e-5)


class _Bag(nn.Module):
    """Mean of the token embeddings over the attended positions, then a linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(64, 8)
        self.out = nn.Linear(8, 2)

    def forward(self, ids, attention_mask=None):
        w = (attention_mask if attention_mask is not None else torch.ones_like(ids)).unsqueeze(-1).float()
        return self.out((self.emb(ids) * w).sum(1) / w.sum(1))


def test_clp_fine_tune_closes_the_counterfactual_token_gap():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(20, 64, (256, 6), generator=g)
    ids[:, 1] = torch.where(torch.rand(256, generator=g) < 0.5, HE, SHE)
    att = torch.ones_like(ids)
    y = ((ids[:, 2] > 40) | (ids[:, 1] == HE)).long()  # the label leans on the identity term
    torch.manual_seed(0)
    model, swap = _Bag(), TokenSwap([(HE, SHE)])
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(100):
        opt.zero_grad()
        F.cross_entropy(model(ids, att), y).backward()
        opt.step()
    before = counterfactual_fairness_gap(model, ids, swap, additional_forward_args={"attention_mask": att})["mean_abs"]
    term = CounterfactualFairnessTerm(swap)
    for _ in range(100):
        opt.zero_grad()
        loss = F.cross_entropy(model(ids, att), y) + term.loss(model, ids, y, additional_forward_args={"attention_mask": att})
        loss.backward()
        opt.step()
    after = counterfactual_fairness_gap(model, ids, swap, additional_forward_args={"attention_mask": att})["mean_abs"]
    assert before > 0.1 and after < 0.1 * before


def test_token_swaps_are_not_fused_into_the_task_forward_pass():
    from lightning_causal.causal import AttributeFlip
    from lightning_causal.repair.module import _fusable

    assert not _fusable(CounterfactualFairnessTerm(TokenSwap([(HE, SHE)])))  # unchanged rows must add nothing
    assert _fusable(CounterfactualFairnessTerm(AttributeFlip(0)))  # a flipped column changes every row
    torch.manual_seed(0)
    model, (ids, _) = _Bag(), _ids()
    y = torch.tensor([0, 1, 1, 0, 1])
    term = CounterfactualFairnessTerm(TokenSwap([(HE, SHE)]), weight=1.0)
    total, logs = CausalRepairModule(model, [term]).objective((ids, y))  # a plain (ids, labels) batch
    expected = term.loss(model, ids, y)  # the changed rows only
    torch.testing.assert_close(logs["repair/counterfactual_fairness"], expected.detach())
    torch.testing.assert_close(total.detach(), (F.cross_entropy(model(ids), y) + expected).detach())
