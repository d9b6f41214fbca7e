"""docs/recipes.md 'Writing your own audit, intervention or counterfactual': the recipe runs as printed, its audit of
its own logs and reports beside the built-in one, and its intervention gives the numbers of a hand-written forward
hook in float64, on the prefix-cached path as on full passes."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from tests.helpers.recipes import recipe_code, run_code

FAST = (("torch.randn(512, 4)", "torch.randn(128, 4)"), ("max_epochs=3", "max_epochs=2"),
        ("probe=(x[:64], y[:64])", "probe=(x[:16], y[:16])"))


def _hand_capped_effects(net: torch.nn.Module, x: torch.Tensor, bound: float) -> torch.Tensor:
    """``[N, U]``: f_t(x) - f_t(x | do(h_u := min(h_u, bound))) for each unit of ``net[1]``, one forward hook per unit."""
    with torch.no_grad():
        clean = net(x)
        t = clean.argmax(1, keepdim=True)
        columns = []
        for u in range(net[0].out_features):
            def cap(module, inputs, out, u=u):
                out = out.clone()
                out[:, u] = out[:, u].clamp(max=bound)
                return out

            handle = net[1].register_forward_hook(cap)
            try:
                columns.append((clean.gather(1, t) - net(x).gather(1, t))[:, 0])
            finally:
                handle.remove()
    return torch.stack(columns, 1)


def test_own_audit_recipe_runs_and_its_numbers_are_a_hand_written_hook(monkeypatch, tmp_path, capsys):
    from lightning_causal.audits import UnitImportanceAudit
    from lightning_causal.causal import unit_effects

    monkeypatch.chdir(tmp_path)
    ns = run_code(recipe_code("own-audit", FAST), "docs snippet")
    printed = capsys.readouterr().out.strip().splitlines()[-1]
    assert printed == str(["causal/cap_half/drift/importance/shift", "causal/cap_half/drift/importance/spearman",
                           "causal/cap_half/drift/importance/topk_jaccard", "causal/cap_half/mean_abs_effect"])
    report = json.loads(sorted(tmp_path.glob("lightning_logs/version_0/causal_audit/epoch_*.json"))[-1].read_text())
    assert set(report["audits"]) == {"input_effect", "cap_half", "cap_zero"}

    model, probe = ns["model"], ns["audit"].probe
    net = copy.deepcopy(model.net).double().eval()
    x = probe.first.double()
    hand = _hand_capped_effects(net, x, 0.5)
    t = net(x).argmax(1)
    for use_suffix in (True, False):  # the prefix-cached path and full passes
        got = unit_effects(net, x, "1", ns["CapAt"](0.5), target=t, use_suffix=use_suffix)
        assert torch.allclose(got, hand, atol=1e-12, rtol=0)
    logged = torch.tensor(report["audits"]["cap_half"]["vectors"]["importance"], dtype=torch.float64)
    assert torch.allclose(logged, hand.abs().mean(0), atol=1e-5)
    # after a ReLU, capping at 0 is do(h_u := 0): the built-in unit importance of the layer
    units = UnitImportanceAudit(["net.1"]).run(model.eval(), probe)
    assert report["audits"]["cap_zero"]["vectors"]["importance"] == pytest.approx(
        units.vectors["importance/net.1"].tolist(), abs=1e-6)
