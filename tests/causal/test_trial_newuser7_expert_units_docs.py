"""docs/your_model.md, 'Branches, shared modules and mixtures': the units of an expert's hidden layer cannot be a
site of unit_effects (it sees some rows only), and a user (newuser7 trial) found no way to their effects. The page's
snippet (one pass of the probe per unit under ``intervene``) runs as printed and gives the effects of a hand-written
loop over the samples routed to the expert, 0 for the others."""

from __future__ import annotations

import re
from pathlib import Path

import torch

PAGE = Path(__file__).resolve().parents[2] / "docs" / "your_model.md"


def test_the_expert_units_snippet_equals_a_loop_over_the_routed_samples() -> None:
    code = re.search(r"<!-- expert units -->\s*```python\n(.*?)```", PAGE.read_text(), re.S).group(1)
    torch.manual_seed(0)
    ns: dict = {}
    exec(compile(code, "<your_model.md expert units>", "exec"), ns)  # noqa: S102 - the docs' own example
    model, x, effects = ns["model"], ns["x"], ns["effects"]
    assert effects.shape == (64, 8)
    with torch.no_grad():
        logits = model.router(x)
        routed = logits.argmax(1) == 0
        assert 0 < int(routed.sum()) < 64
        gate = logits.softmax(1)[:, 0]
        expert = model.experts[0]
        out = model(x)
        t = out.argmax(1)
        want = torch.zeros(64, 8)
        for i in routed.nonzero().flatten().tolist():  # sample by sample, unit by unit
            h = torch.relu(expert[0](x[i]))
            for u in range(8):
                hu = h.clone()
                hu[u] = 0
                want[i, u] = out[i, t[i]] - expert[2](hu)[t[i]] * gate[i]
    torch.testing.assert_close(effects, want, rtol=1e-5, atol=1e-6)
    assert bool((effects[~routed] == 0).all()) and bool((effects[routed] != 0).any())
