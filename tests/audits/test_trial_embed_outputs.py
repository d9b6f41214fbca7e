"""Models without class outputs (an L2-normalised embedding, a metric-learning loss): the audits given
``target=None`` warn that the largest coordinate is no class, CounterfactualAudit refuses, and the
documented way (``output=`` cosine similarity to class centroids, ``target=c``) gives the effects of a
float64 do-loop."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal import (
    AttributeFlip,
    CaptumBaseline,
    CounterfactualAudit,
    FairnessAudit,
    InputEffectAudit,
    SobolAudit,
    UnitImportanceAudit,
)
from lightning_causal.audits.base import Probe
from lightning_causal.causal import input_effects


class Embedder(nn.Module):
    def __init__(self, normalise: bool = True) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 4))
        self.normalise = normalise

    def forward(self, x):
        z = self.net(x)
        return F.normalize(z, dim=-1) if self.normalise else z


class TripletEmbedder(Embedder):  # unnormalised embedding, trained with a metric-learning loss
    def __init__(self) -> None:
        super().__init__(normalise=False)
        self.loss = nn.TripletMarginLoss()


def _probe():
    g = torch.Generator().manual_seed(1)
    return Probe(torch.randn(10, 6, generator=g), torch.arange(10) % 3)


def _embedding_warnings(audit, model, probe):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit.run(model, probe)
    return [str(w.message) for w in caught if "outputs are an embedding" in str(w.message)]


@pytest.mark.parametrize("model", [Embedder(), TripletEmbedder()], ids=["unit_norm", "triplet_loss"])
def test_predicted_class_of_an_embedding_warns(model):
    messages = _embedding_warnings(InputEffectAudit(ace_values=None), model.eval(), _probe())
    assert len(messages) == 1 and "output=lambda out: out @ centroids.T" in messages[0]
    assert len(_embedding_warnings(UnitImportanceAudit(["net.1"], unit_dim=-1), model, _probe())) == 1


def test_logits_and_chosen_targets_do_not_warn():
    assert _embedding_warnings(InputEffectAudit(ace_values=None), Embedder(normalise=False).eval(), _probe()) == []
    assert _embedding_warnings(InputEffectAudit(ace_values=None, target=2), Embedder().eval(), _probe()) == []


def test_counterfactual_of_an_embedding_is_refused():
    with pytest.raises(ValueError, match="outputs are an embedding .*centroids"):
        CounterfactualAudit().validate(Embedder().eval(), _probe())


def test_centroid_similarity_effects_match_float64_do_loop():
    model, probe = Embedder().eval(), _probe()
    with torch.no_grad():
        emb = model(probe.inputs)
    centroids = F.normalize(torch.stack([emb[probe.labels == c].mean(0) for c in range(3)]), dim=1)
    result = InputEffectAudit(ace_values=None, target=1, output=lambda out: out @ centroids.T).run(model, probe)
    reference = torch.zeros(10, 6, dtype=torch.float64)
    m64, x64, c64 = Embedder().double().eval(), probe.inputs.double(), centroids.double()
    with torch.no_grad():
        full = (m64(x64) @ c64.T)[:, 1]
        for g in range(6):
            xi = x64.clone()
            xi[:, g] = 0.0
            reference[:, g] = full - (m64(xi) @ c64.T)[:, 1]
    mean_abs = torch.as_tensor(result.vectors["mean_abs_effect"], dtype=torch.float64)
    torch.testing.assert_close(mean_abs, reference.abs().mean(0), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(torch.as_tensor(result.vectors["mean_effect"], dtype=torch.float64), reference.mean(0), atol=1e-5, rtol=1e-4)
    per_sample = input_effects(model, probe.inputs, target=1, output=lambda out: out @ centroids.T)  # the core, [N, 6]
    torch.testing.assert_close(per_sample.double(), reference, atol=1e-5, rtol=1e-4)


def test_chosen_output_of_a_triplet_model_is_taken_as_given():
    model, probe = TripletEmbedder().eval(), _probe()
    centroids = F.normalize(torch.randn(3, 4, generator=torch.Generator().manual_seed(2)), dim=1)
    audit = InputEffectAudit(ace_values=None, output=lambda out: F.normalize(out, dim=1) @ centroids.T)  # nearest centroid
    assert _embedding_warnings(audit, model, probe) == []


def test_fairness_of_an_embedding_is_refused_and_centroid_scores_give_the_gap_by_hand():
    model, probe = Embedder().eval(), _probe()
    probe.inputs[:, 0] = (torch.arange(10) % 2).float()  # a binary sensitive column
    with pytest.raises(ValueError, match="outputs are an embedding .*centroids"):
        FairnessAudit(AttributeFlip(0)).validate(model, probe)
    centroids = F.normalize(torch.randn(3, 4, generator=torch.Generator().manual_seed(2)), dim=1)
    audit = FairnessAudit(AttributeFlip(0), output=lambda out: out @ centroids.T / 0.1)
    audit.validate(model, probe)
    result = audit.run(model, probe)
    flipped = probe.inputs.clone()
    flipped[:, 0] = 1 - flipped[:, 0]
    with torch.no_grad():
        p, q = ((model(v).double() @ centroids.double().T / 0.1).softmax(1) for v in (probe.inputs, flipped))
    c = p.argmax(1, keepdim=True)  # the class predicted on x: the nearest centroid
    assert result.scalars["cf_gap"] == pytest.approx(float((p.gather(1, c) - q.gather(1, c)).abs().mean()), rel=1e-5)


def _zero_patch_loop(f, x, mask):
    """f(x) - f(x | do(patch g := 0)) for every patch g, in float64: [N, G]."""
    groups = int(mask.max()) + 1
    reference = torch.zeros(x.shape[0], groups, dtype=torch.float64)
    with torch.no_grad():
        full = f(x)
        for g in range(groups):
            reference[:, g] = full - f(torch.where(mask.expand_as(x) == g, torch.zeros((), dtype=x.dtype), x))
    return reference


def test_docs_snippet_runs_and_matches_float64_loops():
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "your_model.md").read_text()
    ns: dict = {}
    exec(compile(re.search(r"<!-- embed -->\s*```python\n(.*?)```", page, re.S).group(1), "<your_model.md embed>", "exec"), ns)  # noqa: S102
    x, y, mask, b = ns["x"].double(), ns["y"], ns["mask"], ns["b"].double()
    embed, c = ns["embed"].double(), ns["centroids"].double()

    def own_class(v):
        return (F.normalize(embed(v), dim=1) @ c.T).gather(1, y[:, None])[:, 0]

    torch.testing.assert_close(ns["patches"].double(), _zero_patch_loop(own_class, x, mask), atol=1e-5, rtol=1e-4)
    error = ns["ReconstructionError"](ns["ae"]).double()
    torch.testing.assert_close(ns["errors"].double(), _zero_patch_loop(error, x, mask), atol=1e-6, rtol=1e-4)
    towers = ns["towers"].double()
    torch.testing.assert_close(ns["scores"].double(), _zero_patch_loop(lambda v: towers(v, b), x, mask), atol=1e-5, rtol=1e-4)
    units = torch.zeros(16, 32, dtype=torch.float64)
    with torch.no_grad():
        h = embed(x)
        for u in range(32):
            hu = h.clone()
            hu[:, u] = 0
            units[:, u] = own_class(x) - (F.normalize(hu, dim=1) @ c.T).gather(1, y[:, None])[:, 0]
    torch.testing.assert_close(ns["units"].double(), units, atol=1e-5, rtol=1e-4)
    zero_shot, text = ns["zero_shot"].double(), torch.zeros(16, 16, dtype=torch.float64)  # its text units: leftovers_s34a
    with torch.no_grad():
        clean = zero_shot(x).gather(1, y[:, None])[:, 0]
        for u in range(16):  # unit u zeroed in every prompt's row, the model rerun
            handle = zero_shot.text.register_forward_hook(lambda _m, _i, out, u=u: out.index_fill(1, torch.tensor([u]), 0.0))
            text[:, u] = clean - zero_shot(x).gather(1, y[:, None])[:, 0]
            handle.remove()
    torch.testing.assert_close(ns["text_units"].double(), text, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("audit", [lambda: SobolAudit(64, target=2, n_bootstrap=0),
                                   lambda: CaptumBaseline(("Saliency",), target=2)], ids=["sobol", "captum_curves"])
def test_softmax_over_an_embeddings_coordinates_warns(audit):
    """A chosen coordinate (`target=2`) is explained, but Sobol's probability and Captum's curves
    take the softmax over the 4 coordinates, which is no probability."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit().run(Embedder().eval(), _probe())
    messages = [str(w.message) for w in caught if "softmax" in str(w.message) and "embedding" in str(w.message)]
    assert len(messages) == 1 and "centroids.T / 0.1" in messages[0]
