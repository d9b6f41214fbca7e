"""The per-k lambdas of the ordinal fairness recipe (docs/your_model.md, 'Fairness of an ordinal outcome') and of
FairnessAudit's multi-class note, built in a loop as the recipe says ("one audit per `k`"), each read their own `k`
(final_read_A 3: written `lambda out: out[:, [k]]`, every callback audited the loop's last `k`)."""

import re
from pathlib import Path

import torch

from lightning_causal import AttributeFlip, CausalAuditCallback
from lightning_causal.audits import FairnessAudit
from lightning_causal.audits.fairness import MULTICLASS_RATES

PAGE = Path(__file__).resolve().parents[2] / "docs" / "your_model.md"
KS = (1, 2, 3)


def _spans_with_lambdas_of_k(text):
    return [span for span in re.findall(r"`([^`]*)`", " ".join(text.split()))
            if "lambda" in span and re.search(r"\bk\b", span)]


def _built_in_a_loop(code):
    namespace = {"torch": torch, "flip": AttributeFlip(0), "FairnessAudit": FairnessAudit,
                 "CausalAuditCallback": CausalAuditCallback}
    built = []
    for k in KS:  # one shared namespace, as a user's loop: a lambda that reads `k` late sees the last
        namespace["k"] = k
        built.append(eval(code, namespace))
    return built


def test_the_recipes_callbacks_built_in_a_loop_read_their_own_k():
    text = PAGE.read_text()
    start = text.index("**Fairness of an ordinal outcome.**")
    spans = [s for s in _spans_with_lambdas_of_k(text[start:text.index("\n\n", start)]) if s.startswith("CausalAuditCallback(")]
    assert len(spans) == 1, spans
    out, batch = torch.arange(12.0).reshape(3, 4), (torch.zeros(3, 2), torch.tensor([0, 2, 4]))
    for k, callback in zip(KS, _built_in_a_loop(spans[0])):
        assert callback.audits[0].name == f"fair_above_{k}"
        torch.testing.assert_close(callback.audits[0].output(out), out[:, [k]])
        torch.testing.assert_close(callback.unpack_batch(batch)[1], (batch[1] > k).long())


def test_the_multiclass_notes_lambdas_built_in_a_loop_read_their_own_k():
    spans = _spans_with_lambdas_of_k(MULTICLASS_RATES)
    assert len(spans) == 3, spans
    out, batch = torch.randn(5, 5, generator=torch.Generator().manual_seed(0)), (torch.zeros(5, 2), torch.arange(5))
    for span in spans:
        name, _, code = span.partition("=")
        for k, fn in zip(KS, _built_in_a_loop(code)):
            if name == "unpack_batch":
                torch.testing.assert_close(fn(batch)[1], (batch[1] > k).long())
            else:
                ref = {"k": k, "torch": torch}
                torch.testing.assert_close(fn(out), eval(f"lambda out: {code.partition(':')[2]}", ref)(out))
