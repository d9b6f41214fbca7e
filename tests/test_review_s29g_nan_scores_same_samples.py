"""Review of 40a0c4ef: CaptumBaseline on a float16 model whose logits overflow on a few probe samples.

40a0c4ef left the samples whose scores hold NaN out of that explanation's curves only: a gradient method, whose
scores stay finite there (its curve too, where the explained logit is -inf: probability 0), kept them, so its areas
(Saliency deletion 0.4805) and the causal map's (0.2431, without them) were means over different samples; and each
explanation of NaN scores gave a warning of its own (causal, FeatureAblation, ShapleyValueSampling: 3 warnings with
the same samples) naming no way out.
"""

import warnings

import pytest
import torch

from lightning_causal import CaptumBaseline
from lightning_causal.audits import Probe
from tests.test_trial_newuser55_nan_scores import _overflowing


def test_every_explanation_leaves_out_the_same_samples_with_one_warning():
    model, x = _overflowing()
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        result = CaptumBaseline(("Saliency", "FeatureAblation"), target=1).run(model, Probe(x))
    lost = result.meta["nan_score_samples"]["causal"]
    assert result.meta["nan_score_samples"] == {"causal": lost, "FeatureAblation": lost}  # Saliency's scores are finite there
    said = [str(w.message) for w in got if "scores hold NaN" in str(w.message)]
    assert len(said) == 1 and "causal's and FeatureAblation's scores hold NaN in samples " + str(lost[:8]) in said[0]
    assert "every explanation's deletion and insertion areas" in said[0] and "copy.deepcopy(model).float()" in said[0]
    kept = [i for i in range(len(x)) if i not in lost]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = CaptumBaseline(("Saliency", "FeatureAblation"), target=1).run(model, Probe(x[kept]))
    for tag in ("deletion_auc", "insertion_auc", "compare/Saliency/deletion_auc", "compare/Saliency/insertion_auc",
                "compare/FeatureAblation/deletion_auc"):
        assert result.scalars[tag] == pytest.approx(alone.scalars[tag], abs=1e-9), tag  # before: Saliency 0.4805 vs 0.5023


def test_the_way_out_named_gives_finite_areas_over_every_sample():
    model, x = _overflowing()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = CaptumBaseline(("Saliency",), target=1).run(model.float(), Probe(x.float()))
    assert "nan_score_samples" not in result.meta
    assert all(torch.isfinite(torch.tensor(result.scalars[t])) for t in ("deletion_auc", "compare/Saliency/deletion_auc"))
