"""FairnessAudit runs the factual forward pass on the probe once: the counterfactual gap, the worlds of an
``Intersections`` and the groups' decisions share it (they used to run it three times), with the same numbers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.audits import FairnessAudit, Probe
from lightning_causal.audits.logit_reads import outputs_judged
from lightning_causal.causal import AttributeFlip, Intersections, TokenSwap, carrier_unit_effects


def _probe_and_model() -> tuple[torch.Tensor, torch.Tensor, nn.Module]:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(16, 3, generator=g)
    x[:, 0] = torch.tensor([0.0, 1.0] * 8)  # sex
    x[:, 1] = torch.tensor([0.0, 0.0, 1.0, 1.0] * 4)  # race
    y = torch.tensor([0, 1, 1, 0, 1, 1, 0, 0] * 2)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return x, y, model


def _passes(model: nn.Module, x: torch.Tensor, audit: FairnessAudit, labels: torch.Tensor | None, **forward_args):
    """The rows of each forward pass of ``model`` in ``audit.run``, and how many were the factual pass on ``x``: the
    audit's own passes (inside ``outputs_judged``: not the pass after a direct run that judges what its output reads as,
    ``logit_reads.judge_outputs``, which runs on probes without class labels too since leftovers_s39a)."""
    rows, factual = [], []

    def count(_m, inputs, _out) -> None:
        rows.append(inputs[0].shape[0])
        factual.append(torch.equal(inputs[0], x))

    handle = model.register_forward_hook(count)
    try:
        with outputs_judged():
            result = audit.run(model, Probe(x, labels, additional_forward_args=forward_args or None))
    finally:
        handle.remove()
    return rows, sum(factual), result


@pytest.mark.parametrize("worlds", [False, True])
def test_the_factual_pass_runs_once(worlds):
    x, y, model = _probe_and_model()
    flip = Intersections(AttributeFlip(0), {"sex": 0, "race": 1}) if worlds else AttributeFlip(0)
    rows, factual, _ = _passes(model, x, FairnessAudit(flip, worlds=worlds), y)
    # in all five passes: the check of what the outputs are (1 row: validate's, run by hand too, newuser80), the trial
    # pass that measures rows per pass (4 rows), the factual pass (16), samples 0 and 1 alone then 8 and 15 (2 and 2,
    # leftovers_s40a: the rows must not see
    # each other, newuser58), and one pass of the changed rows: the flip's 16, with the worlds also each row in the 3 of
    # the 4 sex × race worlds it is not in, after its first, an inner and its last row alone (1, 1, 1: the stacked-rows
    # check, mends_s42a: a branch on the batch's statistic the probe's check does not see); the factual pass too, after
    # its first, an inner and its last row alone (1, 1, 1, leftovers_s43a: its rows took the batch's branch unchecked)
    assert factual == 1
    assert rows == [1, 4, 1, 1, 1, 16, 2, 2, 1, 1, 1, 16 + 3 * 16 if worlds else 16]


def test_a_regression_target_costs_no_pass_of_its_own():
    x, _, model = _probe_and_model()
    with pytest.warns(UserWarning, match="regression target"):
        rows, factual, result = _passes(model, x, FairnessAudit(AttributeFlip(0), compare="probability"), torch.linspace(-2.5, 3.5, 16))
    # the labels' check reads the width of the factual pass's outputs; 1, 1, 1: the changed rows' check (mends_s42a)
    assert factual == 1 and rows == [1, 4, 1, 1, 1, 16, 2, 2, 1, 1, 1, 16]
    assert "equalized_odds_difference" not in result.scalars


def test_the_numbers_are_those_of_separate_passes():
    """Values pinned from the audit before it shared the factual pass (three passes of it then)."""
    x, y, model = _probe_and_model()
    r = FairnessAudit(Intersections(AttributeFlip(0), {"sex": 0, "race": 1}), worlds=True).run(model, Probe(x, y))
    assert r.scalars["cf_gap"] == pytest.approx(0.05087168514728546, rel=1e-6)
    assert r.scalars["cf_gap_max"] == pytest.approx(0.14481323957443237, rel=1e-6)
    assert r.scalars["cf_flip_rate"] == 0.125
    assert r.scalars["world_gap_max"] == pytest.approx(0.47526872158050537, rel=1e-6)
    assert r.scalars["demographic_parity_difference"] == 0.75 and r.scalars["equalized_odds_difference"] == 0.75
    rows = r.tables["groups"]
    assert [row["positive_rate"] for row in rows] == [0.25, 0.25, 0.75, 0.0]
    assert [row["accuracy"] for row in rows] == [0.25, 0.25, 0.75, 1.0]
    assert [row["cf_gap"] for row in rows] == pytest.approx(
        [0.07652607560157776, 0.034388333559036255, 0.08634606003761292, 0.006226271390914917], rel=1e-6)


def _hooks_left(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


@pytest.mark.parametrize(("layers", "patched"), [(["1"], []), (["0", "2:input"], [4, 1, 1, 1, 36])])
def test_carrier_layers_share_the_factual_pass(layers, patched):
    """Each carrier layer ran the factual pass again (capturing the layer), the counterfactual pass and a pass of 8 rows
    that looks for noise (8, 16, 16 per layer after the audit's 4, 16, 16). Its activations are recorded in the audit's
    own passes now, with the numbers of a carrier_unit_effects call of its own. The patched rows run through the network
    suffix (no pass of the model), but for the input site 2:input, which cannot be split off: its rows run through the
    whole model, after a trial pass of 4 rows; of its 4 units x 16 rows the 36 whose ReLU-ed unit differs between the
    factual and the counterfactual sample (the 28 others, 0 in both, patch nothing: moving_units). The flip's changed
    rows and the patched rows stacked in a pass each run their first, an inner and their last row alone first (1, 1, 1:
    the stacked-rows check, mends_s42a, as carrier_unit_effects')."""
    x, y, model = _probe_and_model()
    rows, factual, result = _passes(model, x, FairnessAudit(AttributeFlip(0), layers=layers), y)
    assert factual == 1 and rows == [1, 4, 1, 1, 1, 16, 2, 2, 1, 1, 1, 16, *patched]  # 2, 2: samples 0 and 1, then 8 and 15 alone
    for layer in layers:
        own = carrier_unit_effects(model, x, AttributeFlip(0), layer).abs().mean(0)
        assert torch.equal(result.vectors[f"carriers/{layer}"], own)
    assert _hooks_left(model) == 0


def test_token_carriers_with_a_mask_share_the_passes():
    """Token ids with an attention mask (a forward argument: the patched rows run through the whole model) and rows the
    swap leaves alone (their h_cf is h): the same numbers in the audit's passes."""

    class Tokens(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(1)
            self.emb, self.fc, self.out = nn.Embedding(20, 6), nn.Linear(6, 4), nn.Linear(4, 2)

        def forward(self, ids, attention_mask):
            return self.out(torch.relu(self.fc((self.emb(ids) * attention_mask.unsqueeze(-1)).mean(1))))

    ids = torch.randint(3, 20, (10, 5), generator=torch.Generator().manual_seed(2))
    ids[::2, 1], ids[1::3, 2] = 1, 2  # rows 3, 5 and 9 hold neither term
    mask = torch.ones(10, 5, dtype=torch.long)
    mask[:, 4] = 0
    model, swap = Tokens().eval(), TokenSwap([(1, 2)])
    rows, factual, result = _passes(model, ids, FairnessAudit(swap, layers=["fc"]), None, attention_mask=mask)
    # the outputs' check (1 row, newuser80), the ids' check (1 row), the trial pass, the factual pass, samples 0 and 1 alone, then 5 and 9 (s40a), the 7 sentences with a term among their real tokens; then
    # (each of these three stacked passes, the factual one too (leftovers_s43a), after its first, an inner and its last
    # row alone: 1, 1, 1, the stacked-rows check, mends_s42a)
    # the patched rows (a forward argument: through the whole model) after a trial pass: of the 4 units x 10 rows the 25
    # whose unit the swap changes, bit for bit (moving_units): not those of sentences 3, 5 and 9 (neither term), nor of
    # sentence 4 (both terms: its mean embedding stays, but for one unit moved by 3e-8, the rounding of the 7-row pass,
    # on CPUs whose kernels round a 7-row product otherwise than a 1-row one: 24 on an AVX-512 Xeon, where it is not moved)
    assert factual == 1 and rows[:17] == [1, 1, 4, 1, 1, 1, 10, 2, 2, 1, 1, 1, 7, 4, 1, 1, 1] and rows[17] in (24, 25)
    own = carrier_unit_effects(model, ids, swap, "fc", additional_forward_args={"attention_mask": mask}).abs().mean(0)
    assert torch.allclose(result.vectors["carriers/fc"], own, atol=1e-7)


def test_the_recording_hooks_are_removed_when_a_pass_fails():
    x, y, model = _probe_and_model()
    calls = []

    def fail_third(_m, inputs) -> None:  # the counterfactual pass (16 flipped rows) fails, the recording hooks on
        calls.append(1)  # (a count of the passes would now meet the factual pass's rows alone: leftovers_s43a)
        if inputs[0].shape[0] == 16 and not torch.equal(inputs[0], x):
            raise RuntimeError("out of luck")

    handle = model.register_forward_pre_hook(fail_third)
    with pytest.raises(RuntimeError, match="out of luck"):
        FairnessAudit(AttributeFlip(0), layers=["1", "2:input"]).run(model, Probe(x, y))
    handle.remove()
    assert _hooks_left(model) == 0 and [n for n, _ in model.named_modules()] == ["", "0", "1", "2"]
