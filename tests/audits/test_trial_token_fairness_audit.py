"""FairnessAudit with a TokenSwap as a user meets it: a probe that no swap changes (ids of another
tokenizer, identity terms only in stale padding) is named at set-up, instead of a gap of 0 that
measured nothing."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import FairnessAudit
from lightning_causal.audits.base import Probe
from lightning_causal.causal import TokenSwap

HE, SHE = 5, 6


class _Bag(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.out = nn.Embedding(12, 4), nn.Linear(4, 2)

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        m = attention_mask.unsqueeze(-1).float()
        return self.out((self.emb(ids) * m).sum(1) / m.sum(1))


def _probe(ids: torch.Tensor) -> Probe:
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]])
    return Probe(ids, torch.tensor([0, 1, 1]), additional_forward_args={"attention_mask": mask})


@pytest.mark.parametrize("ids", [
    torch.tensor([[1, 3, 2, 0], [1, 4, 0, 0], [1, 7, 8, 2]]),  # no identity term at all
    torch.tensor([[1, 3, 2, SHE], [1, 4, HE, 0], [1, 7, 8, 2]]),  # only in padding: no part of a sentence
])
def test_a_probe_that_the_swap_leaves_unchanged_is_named_at_set_up(ids):
    audit = FairnessAudit(TokenSwap([(HE, SHE)]))
    with pytest.warns(UserWarning, match=r"changes none of the 3 probe samples .*no sentence holds a term"):
        audit.validate(_Bag(), _probe(ids))
    assert audit.run(_Bag(), _probe(ids)).scalars["cf_changed"] == 0.0


def test_a_probe_with_identity_terms_validates_quietly():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FairnessAudit(TokenSwap([(HE, SHE)])).validate(_Bag(), _probe(torch.tensor([[1, HE, 2, 0], [1, 4, 0, 0], [1, 7, 8, 2]])))


def test_a_vocabulary_names_the_terms_in_the_groups_table_the_summary_and_the_report():
    from lightning_causal.reporting.summary import markdown_summary

    words = ["[PAD]", "[CLS]", "[SEP]", "the", "film", "he", "she", "his", "her", "was", "good", "bad"]
    ids = torch.tensor([[1, HE, 10, 0], [1, 8, 0, 0], [1, 6, 11, 2]])
    audit = FairnessAudit(TokenSwap([(HE, SHE), (7, 8)]), vocabulary=words)
    result = audit.run(_Bag(), _probe(ids))
    assert [row["name"] for row in result.tables["groups"]] == ["first terms ['he', 'his']", "second terms ['she', 'her']"]
    assert result.meta["pairs"] == [["he", "she"], ["his", "her"]]
    assert "first terms ['he', 'his'] (positive_rate" in markdown_summary(0, [result])
    assert FairnessAudit(TokenSwap([(HE, SHE)])).run(_Bag(), _probe(ids)).meta["pairs"] == [[HE, SHE]]
    with pytest.raises(ValueError, match="holds 6 words and the pairs reach id 8"):
        FairnessAudit(TokenSwap([(HE, SHE), (7, 8)]), vocabulary=words[:6])
    with pytest.raises(ValueError, match="`vocabulary` to be None for the counterfactual"):
        FairnessAudit(lambda x: 1 - x, vocabulary=words)


def test_a_token_swap_has_no_sensitive_column_in_the_report():
    """A TokenSwap names no sensitive column: the report's meta said the string 'None' (JSON "None",
    a column of that name to a reader); it is null now (found by the tokenswap trial)."""
    ids = torch.tensor([[1, HE, 3, 0], [1, SHE, 0, 0], [1, 7, 8, 2]])
    assert FairnessAudit(TokenSwap([(HE, SHE)])).run(_Bag(), _probe(ids)).meta["sensitive"] is None


def test_the_summary_names_both_groups_of_a_long_list_of_pairs():
    from lightning_causal.reporting.summary import markdown_summary

    words = [f"word{i}" for i in range(60)]
    pairs = [(10 + i, 30 + i) for i in range(15)]  # Garg et al. swap dozens of identity terms
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(4, 60, (30, 4), generator=g)
    ids[:10, 0], ids[10:20, 0] = 12, 33  # sentences of each side
    ids[:20, 1:] = ids[:20, 1:].clamp(max=9)
    mask = torch.ones(30, 4, dtype=torch.long)

    class Bag(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.emb, self.out = nn.Embedding(60, 4), nn.Linear(4, 2)

        def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.out(self.emb(ids).mean(1))

    probe = Probe(ids, torch.randint(0, 2, (30,), generator=g), additional_forward_args={"attention_mask": mask})
    result = FairnessAudit(TokenSwap(pairs), vocabulary=words).run(Bag(), probe)
    names = [row["name"] for row in result.tables["groups"]]
    assert names == ["first terms ['word10', 'word11', 'word12', … 15 in all]",
                     "second terms ['word30', 'word31', 'word32', … 15 in all]"]
    assert len(result.meta["pairs"]) == 15
    text = markdown_summary(0, [result])
    assert all(f"{name} (positive_rate" in text for name in names)
