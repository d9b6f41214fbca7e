"""newuser87 trial: docs/your_model.md's recipe for energy-based models and conformal prediction sets runs as printed;
its effects equal a loop that sets one column to 0 and reruns the model (the energies' argmin class, the scalar energy
E(x, y) scored per class, the conformal set's size), its fairness audit's rates equal the ambiguous sets counted by
hand, and the calibrated threshold buffer is left as found."""

from __future__ import annotations

import re
from pathlib import Path

import torch

PAGE = Path(__file__).resolve().parents[1] / "docs" / "your_model.md"


def _zeroed(x: torch.Tensor, j: int) -> torch.Tensor:
    out = x.clone()
    out[:, j] = 0.0
    return out


def test_the_energy_and_conformal_recipe_matches_set_rerun_difference(capsys) -> None:
    code = re.search(r"<!-- energies and sets -->\s*```python\n(.*?)```", PAGE.read_text(), re.S).group(1)
    ns: dict = {"__name__": "energy_recipe"}
    exec(compile(code, "<your_model.md energies and sets>", "exec"), ns)  # noqa: S102 - the docs' own example
    x = ns["x"]
    with torch.no_grad():
        energies = ns["energy_net"](x)
        t = energies.argmin(1, keepdim=True)  # the likeliest class decides
        loop = torch.stack([-energies.gather(1, t)[:, 0] + ns["energy_net"](_zeroed(x, j)).gather(1, t)[:, 0]
                            for j in range(4)], 1)
        torch.testing.assert_close(ns["effects"], loop)

        def joint_energy(rows: torch.Tensor, k: int) -> torch.Tensor:  # E(x, k) called class by class
            return ns["joint"].energy(torch.cat([rows, torch.eye(3)[k].expand(len(rows), 3)], 1))[:, 0]

        per_class = torch.stack([joint_energy(x, k) for k in range(3)], 1)
        t = per_class.argmin(1)
        loop = torch.stack([-per_class[torch.arange(len(x)), t] + torch.stack(
            [joint_energy(_zeroed(x, j), k) for k in range(3)], 1)[torch.arange(len(x)), t] for j in range(4)], 1)
        torch.testing.assert_close(ns["joint_effects"], loop)

        conformal = ns["conformal"]
        size = conformal(x)["sets"].sum(1)
        loop = torch.stack([size - conformal(_zeroed(x, j))["sets"].sum(1) for j in range(4)], 1)
        torch.testing.assert_close(ns["size_effects"], loop)
    assert conformal.qhat.item() == torch.tensor(0.7).item()
    scalars, group = ns["by_group"].scalars, x[:, 3]
    for g in (0, 1):
        assert abs(scalars[f"positive_rate/group_{g}"] - float((size[group == g] >= 2).float().mean())) < 1e-6
    flipped = x.clone()
    flipped[:, 3] = 1 - flipped[:, 3]
    with torch.no_grad():
        changed = ((size >= 2) != (conformal(flipped)["sets"].sum(1) >= 2)).float().mean()
    assert abs(scalars["cf_flip_rate"] - float(changed)) < 1e-6
    assert capsys.readouterr().out.splitlines() == ["['positive_rate/group_0', 'positive_rate/group_1']"]
