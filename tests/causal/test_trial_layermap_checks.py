"""The layer causal map against a brute-force float64 reference, and its `layers=` checks (the layermap trial)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import LayerMapAudit, layer_causal_map


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 3)).double()


def _hsic_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """CKA as normalised HSIC of centred Gram matrices (a second formulation)."""
    h = torch.eye(x.shape[0], dtype=torch.float64) - 1.0 / x.shape[0]
    k, m = h @ x @ x.T @ h, h @ y @ y.T @ h
    return float((k * m).sum() / ((k * k).sum() * (m * m).sum()).sqrt())


def test_cka_response_and_output_effects_equal_a_hook_loop_in_float64():
    model, x = _model(), torch.randn(10, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    mask = torch.tensor([[0, 0, 1, 1, 2, 2]])
    lm = layer_causal_map(model, x, mask, ["0", "2", "4"], max_rows=None, baseline=0.25)
    acts: dict[str, torch.Tensor] = {}
    hooks = [model.get_submodule(n).register_forward_hook(lambda m, i, o, n=n: acts.__setitem__(n, o)) for n in lm.layers]
    with torch.no_grad():
        out = model(x)
        clean = dict(acts)
        rows, logit = {n: [] for n in lm.layers}, []
        t = out.argmax(1, keepdim=True)
        for g in range(3):  # group-major rows
            xg = x.clone()
            xg[:, mask[0] == g] = 0.25
            o = model(xg)
            for n in lm.layers:
                rows[n].append(clean[n] - acts[n])
            logit.append((out.gather(1, t) - o.gather(1, t)).abs().squeeze(1))
    for h in hooks:
        h.remove()
    prof = {n: torch.cat(v) for n, v in rows.items()}
    for i, a in enumerate(lm.layers):
        assert float(lm.response[i]) == pytest.approx(float(prof[a].norm(dim=1).mean() / clean[a].norm(dim=1).mean()), rel=1e-12)
        for j, b in enumerate(lm.layers):
            assert float(lm.cka[i, j]) == pytest.approx(_hsic_cka(prof[a], prof[b]), abs=1e-12)
    torch.testing.assert_close(lm.group_effects["<output>"], torch.stack(logit).mean(1), rtol=1e-12, atol=1e-14)


def test_a_layer_named_twice_is_refused_not_said_to_run_twice():
    # before: a UserWarning said "'2' runs 2 times per forward pass" (each name's hook counted a call)
    model, x = _model(), torch.randn(6, 6, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"`layers` to name each module once but got \['2'\] more than once"):
            layer_causal_map(model, x, layers=["0", "2", "2"])
    with pytest.raises(ValueError, match=r"name each module once but got \['0'\]"):
        LayerMapAudit(layers=["0", "0"])
