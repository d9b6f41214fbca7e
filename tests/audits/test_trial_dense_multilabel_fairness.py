"""Dense-output trial: FairnessAudit and CounterfactualAudit on a multi-label classifier.

Both refuse multi-hot labels and said only "pass `unpack_batch=` whose labels are one class per
sample". A user who did just that (labels ``y[:, k]``) got FairnessAudit's softmax over all K label
logits: on a model whose sensitive column raises every label's logit by 2, a counterfactual gap of
0, silently. The refusal now names the ``output=`` that makes label k the audit's binary
classifier, and that way's gap equals the hand-computed mean |sigmoid(z_k) - sigmoid(z_k')|.
"""

from __future__ import annotations

import pytest
import torch

from lightning_causal.audits import CounterfactualAudit, FairnessAudit
from lightning_causal.audits.base import Probe
from tests.helpers.dense_outputs import flip_first_column, multi_label_linear


def _model_and_probe():
    """z_k = 2 x_0 + x_1 - x_2 + c_k for 3 labels: the sensitive column 0 adds 2 to every label's logit."""
    model, x, labels = multi_label_linear()
    return model.eval(), x, labels


def test_fairness_audit_names_the_per_label_output_and_its_gap_is_label_ks_sigmoid():
    model, x, labels = _model_and_probe()
    with pytest.raises(ValueError, match=r"multi-label classifier audit label k as a binary classifier, "
                                         r"`output=lambda out: out\[:, \[k\]\]` with labels `y\[:, k\]\.long\(\)`"):
        FairnessAudit(flip_first_column, sensitive=0).run(model, Probe(x, labels))
    k = 1
    labels_only = FairnessAudit(flip_first_column, sensitive=0).run(model, Probe(x, labels[:, k].long()))
    assert labels_only.scalars["cf_gap"] == pytest.approx(0.0, abs=1e-12)  # why the output is named: softmax-blind
    result = FairnessAudit(flip_first_column, sensitive=0, output=lambda out: out[:, [k]]).run(model, Probe(x, labels[:, k].long()))
    with torch.no_grad():
        z, z_cf = model(x)[:, k], model(flip_first_column(x))[:, k]
    expected = float((torch.sigmoid(z) - torch.sigmoid(z_cf)).abs().mean())
    assert expected > 0.1 and result.scalars["cf_gap"] == pytest.approx(expected, rel=1e-9)


def test_counterfactual_audit_names_its_two_logit_output():
    model, x, labels = _model_and_probe()
    with pytest.raises(ValueError, match=r"`output=lambda out: torch\.cat\(\[-out\[:, \[k\]\], out\[:, \[k\]\]\], 1\)` with "
                                         r"labels `y\[:, k\]\.long\(\)`"):
        CounterfactualAudit().run(model, Probe(x, labels))
    per_sample_tags = torch.zeros(16, 5, dtype=torch.long)  # per-position labels: no multi-label advice
    with pytest.raises(ValueError, match=r"one class per sample$"):
        FairnessAudit(flip_first_column, sensitive=0).run(model, Probe(x, per_sample_tags))
