"""Trial newuser125 (neural fields): docs/your_model.md's recipe for coordinate MLPs and auto-decoders runs, and its
numbers are those of loops that set a coordinate to 0 and rerun the field, and that zero a column of the latent codes;
its audit lists run on the fields they are written for."""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import torch
from torch import nn

from lightning_causal import audit_model

PAGE = Path(__file__).resolve().parents[2] / "docs" / "your_model.md"


def _recipe() -> dict:
    code = re.search(r"<!-- fields -->\n```python\n(.*?)```", PAGE.read_text(), re.S).group(1)
    ns: dict = {}
    exec(compile(code, "<your_model.md fields>", "exec"), ns)  # noqa: S102 - the page's own example
    return ns


def test_the_recipe_effects_equal_loops_over_the_coordinates_and_the_code_dimensions():
    ns = _recipe()
    field, coords, ids = ns["field"], ns["coords"], ns["ids"]
    with torch.no_grad():
        f0 = field(coords, ids)[:, 0]
        xy = torch.stack([f0 - field(coords.index_fill(1, torch.tensor([j]), 0.0), ids)[:, 0] for j in range(2)], 1)
        latent = []
        for d in range(field.codes.embedding_dim):
            saved = field.codes.weight[:, d].clone()
            field.codes.weight[:, d] = 0.0
            latent.append(f0 - field(coords, ids)[:, 0])
            field.codes.weight[:, d] = saved
    assert xy.abs().max() > 1e-3 and torch.stack(latent, 1).abs().max() > 1e-3  # both move the output
    torch.testing.assert_close(ns["xy"], xy, rtol=0, atol=1e-6)
    torch.testing.assert_close(ns["latent"], torch.stack(latent, 1), rtol=0, atol=1e-6)


class _ImageField(nn.Module):  # one image's field, forward(x), of the recipe's kind
    def __init__(self, classes: int = 1):
        super().__init__()
        self.register_buffer("B", torch.randn(2, 16) * 2.0)
        self.net = nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, classes))

    def forward(self, x):
        p = 2 * math.pi * x @ self.B
        return self.net(torch.cat([p.sin(), p.cos()], -1))


def test_the_recipe_audit_lists_run_on_their_fields():
    ns = _recipe()
    torch.manual_seed(1)
    x = torch.rand(48, 2) * 2 - 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        decoder = audit_model(ns["field"], ns["decoder_audits"], ((ns["coords"], ns["ids"]),), explain="x")
        image = audit_model(_ImageField().eval(), ns["image_audits"], (x,))
        occupancy = _ImageField(classes=2).eval()
        cf = audit_model(occupancy, ns["occupancy_audits"], (x, occupancy(x).argmax(1).roll(1)))
    assert [r.audit for r in decoder] == ["coordinates", "latent"]
    assert [row["feature"] for row in decoder[0].tables["top_groups"]] in (["x", "y"], ["y", "x"])
    assert decoder[1].vectors["importance/codes"].shape == (8,)
    assert {row["feature"] for row in image[0].tables["indices"]} == {"x", "y"}
    rows = cf[0].tables["counterfactuals"]
    assert rows and all(-1.0 <= v <= 1.0 for row in rows for v in row["counterfactual_values"])  # inside the domain
