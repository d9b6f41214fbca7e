import json

import pytest
import torch
from torch import nn

from lightning_causal.audits.base import Probe
from lightning_causal.audits.causal_graph import CausalGraphAudit
from lightning_causal.audits.counterfactual import CounterfactualAudit
from lightning_causal.audits.layer_map import LayerMapAudit
from lightning_causal.causal.structure.counterfactuals import CounterfactualSettings
from lightning_causal.reporting.layer_map_figures import layer_map_figure
from tests.helpers.models import MLP, DigitsCNN, all_hook_counts, seeded
from tests.helpers.planted import Planted, planted_inputs

IMG = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def test_layer_map_audit_on_images():
    model = seeded(DigitsCNN(channels=(4, 6), hidden=8), 0)
    audit = LayerMapAudit(patch_size=4, layers=["conv1", "relu1", "conv2", "fc1"])
    probe = Probe(IMG)
    audit.validate(model, probe)
    r = audit.run(model, probe)
    lm = r.graphs["layer_map"]
    assert lm["kind"] == "layer_map" and lm["layers"] == ["conv1", "relu1", "conv2", "fc1"]
    assert r.scalars["n_layers"] == 4.0 and 1 <= r.scalars["n_nodes"] <= 4
    assert r.vectors["layer_response"].shape == (4,)
    assert len(lm["nodes"][0]["group_effects"]) == 4  # 4 patches of 4x4
    assert sum(row["layers"] for row in r.tables["nodes"]) == 4
    json.dumps(r.to_dict(), allow_nan=False)


def test_counterfactual_audit_explains_misclassified_samples_towards_labels():
    torch.manual_seed(0)
    model = DigitsCNN(channels=(4, 6), hidden=8).eval()
    top2 = model(IMG).topk(2, dim=1).indices
    labels = top2[:, 0].clone()
    labels[[1, 4, 7]] = top2[[1, 4, 7], 1]  # three planted misclassifications (towards the runner-up)
    r = CounterfactualAudit(settings=CounterfactualSettings(steps=40, lr=0.1), max_samples=2, bounds=(0.0, 1.0)).run(model, Probe(IMG, labels))
    assert r.scalars["misclassified_rate"] == pytest.approx(3 / 12) and r.scalars["explained"] == 2.0
    rows = r.tables["counterfactuals"]
    assert [row["index"] for row in rows] == [1, 4] and [row["label"] for row in rows] == labels[[1, 4]].tolist()
    assert r.scalars["success_rate"] == 1.0 and all(row["success"] for row in rows)
    assert r.scalars["mean_l2"] == pytest.approx(sum(row["l2"] for row in rows) / 2)
    img = r.images["counterfactuals"]
    assert img.shape == (2, 1, 8, 26) and img.min() >= 0 and img.max() <= 1
    x = IMG[1, 0]
    assert torch.allclose(img[0, 0, :, :8], (x - x.min()) / (x.max() - x.min()), atol=0.05)  # input panel
    diff = img[0, 0, :, 18:] - 0.5
    assert diff.abs().max() == pytest.approx(0.5)  # the largest change is drawn at full scale
    json.dumps(r.to_dict(), allow_nan=False)


def test_counterfactual_audit_tabular_and_nothing_to_explain():
    model = seeded(MLP(4, (8,), 3), 0).eval()
    x = torch.randn(10, 4, generator=torch.Generator().manual_seed(2))
    pred = model(x).argmax(1)
    r = CounterfactualAudit(settings=CounterfactualSettings(steps=5)).run(model, Probe(x, pred))
    assert r.scalars == {"misclassified_rate": 0.0, "explained": 0.0} and not r.tables
    labels = pred.clone()
    labels[0] = (pred[0] + 1) % 3
    r = CounterfactualAudit(settings=CounterfactualSettings(steps=150, lr=0.05)).run(model, Probe(x, labels))
    # [N, D]: the changes by column; the pictures (one channel [M, 1, 1, D]) are drawn only under figure_kind="sequence"
    assert "changes" in r.tables["counterfactuals"][0] and r.meta["counterfactual_inputs"] == "columns"


@pytest.mark.parametrize("head", [nn.Flatten(0), nn.Identity()], ids=["[N]", "[N, 1]"])
def test_counterfactual_audit_refuses_a_model_without_class_logits(head):
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1), head)
    with pytest.raises(ValueError, match=r"logits \[N, classes >= 2\] but the model returned shape \[6"):
        CounterfactualAudit(max_samples=2).run(model, Probe(torch.randn(6, 4), torch.zeros(6, dtype=torch.long)))


def test_counterfactual_audit_takes_per_feature_bounds():
    # a [D] pair of bounds was refused at construction ("broadcastable to one input [1]")
    model = seeded(MLP(4, (8,), 3), 0).eval()
    x = torch.rand(10, 4, generator=torch.Generator().manual_seed(2))
    labels = (model(x).argmax(1) + 1) % 3
    lo, hi = torch.zeros(4), torch.tensor([1.0, 1.0, 0.5, 1.0])
    r = CounterfactualAudit(settings=CounterfactualSettings(steps=30, lr=0.05), bounds=(lo, hi), max_samples=3).run(model, Probe(x, labels))
    assert r.scalars["explained"] == 3.0
    with pytest.raises(ValueError, match="low <= high"):
        CounterfactualAudit(bounds=(hi, lo))
    with pytest.raises(ValueError, match="broadcastable to one input"):
        CounterfactualAudit(bounds=(torch.zeros(3), torch.ones(3))).run(model, Probe(x, labels))


def test_audits_leave_no_trace():
    model = seeded(DigitsCNN(channels=(4, 6), hidden=8, dropout=0.2), 0).train()
    params = [p.detach().clone() for p in model.parameters()]
    probe = Probe(IMG, torch.zeros(12, dtype=torch.long))
    for audit in (CausalGraphAudit(["conv1", "conv2"], top_k=2, stability_resamples=1), LayerMapAudit(patch_size=4),
                  CounterfactualAudit(settings=CounterfactualSettings(steps=5), max_samples=2)):
        audit.run(model, probe)
    assert model.training and model.dropout.training and all_hook_counts(model) == 0
    assert all(torch.equal(a, b) for a, b in zip(params, model.parameters()))
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: LayerMapAudit(feature_mask=torch.zeros(1, 4, dtype=torch.long), patch_size=2), "at most one"),
        (lambda: LayerMapAudit(patch_size=0), "patch_size"),
        (lambda: LayerMapAudit(threshold=2.0), "threshold"),
        (lambda: LayerMapAudit(layers=[]), "Expected argument `layers`"),
        (lambda: CounterfactualAudit(max_samples=0), "max_samples"),
        (lambda: CounterfactualAudit(settings=CounterfactualSettings(steps=0)), "steps"),
        (lambda: CounterfactualAudit(settings=CounterfactualSettings(l1=-1.0)), "l1"),
        (lambda: CounterfactualAudit(settings=CounterfactualSettings(lr=0.0)), "lr"),
    ],
)
def test_bad_configuration(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_validate_catches_bad_setups():
    model = DigitsCNN(channels=(4, 6), hidden=8)
    with pytest.raises(ValueError, match="Unknown module name"):
        LayerMapAudit(layers=["nope"]).validate(model, Probe(IMG))
    with pytest.raises(ValueError, match="patch_size"):
        LayerMapAudit(patch_size=2).validate(MLP(4), Probe(torch.rand(3, 4)))
    with pytest.raises(ValueError, match="needs probe labels"):
        CounterfactualAudit().validate(model, Probe(IMG))
    with pytest.raises(ValueError, match="Expected one input tensor for CounterfactualAudit"):
        CounterfactualAudit().validate(model, Probe((IMG, IMG), torch.zeros(12, dtype=torch.long)))


def test_layer_map_figure_from_export():
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    lm = LayerMapAudit().run(model, Probe(torch.randn(8, 4))).graphs["layer_map"]
    fig = layer_map_figure(lm)
    assert len(fig.axes) == 4 and "causal nodes" in fig._suptitle.get_text()  # matrix, bars of s, colour bar, key


def test_tensorboard_renderer_draws_graph_and_layer_map(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    from lightning_causal.reporting.tensorboard import TensorBoardRenderer

    model = Planted()
    results = [CausalGraphAudit(["a", "b"], top_k=3, stability_resamples=0).run(model, Probe(planted_inputs())),
               LayerMapAudit().run(model, Probe(planted_inputs()))]
    writer = SummaryWriter(str(tmp_path))
    try:
        TensorBoardRenderer().render(writer, 0, results, None)
    finally:
        writer.close()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    assert {"causal/causal_graph/graphs/causal_graph", "causal/layer_map/graphs/layer_map"} <= set(acc.Tags()["images"])


def test_counterfactual_audit_names_columns_and_classes_and_checks_labels_and_mask_against_the_probe():
    """The table said x40 for a named column; per-position labels [N, T] gave a shape error from
    `pred != y`; a mask of the wrong shape was reported with the shape of the misclassified subset."""
    model = seeded(MLP(4, (8,), 3), 0).eval()
    x = torch.randn(10, 4, generator=torch.Generator().manual_seed(2))
    labels = model(x).argmax(1)
    labels[0] = (labels[0] + 1) % 3
    audit = CounterfactualAudit(settings=CounterfactualSettings(steps=150, lr=0.05), feature_names=["age", "hours", "edu", "gain"],
                                class_names=["a", "b", "c"])
    r = audit.run(model, Probe(x, labels))
    changes = r.tables["counterfactuals"][0]["changes"]
    assert changes and all(part.split(":")[0] in {"age", "hours", "edu", "gain"} for part in changes.split(", "))
    assert r.meta["class_names"] == ["a", "b", "c"] and r.meta["feature_names"] == ["age", "hours", "edu", "gain"]
    with pytest.raises(ValueError, match=r"one class label per probe sample, \[10\], but got \[10, 3\]"):
        audit.validate(model, Probe(x, torch.zeros(10, 3, dtype=torch.long)))
    with pytest.raises(ValueError, match=r"`mask` broadcastable to one probe sample \[1, 4\].*\[10, 3\]"):
        CounterfactualAudit(mask=torch.ones(10, 3)).validate(model, Probe(x, labels))
    with pytest.raises(ValueError, match="`class_names`"):
        CounterfactualAudit(class_names=["a", "b"]).run(model, Probe(x, labels))


def test_a_probe_of_several_inputs_is_shown_the_ways_out_and_the_first_one_works():
    """The audits that explain one input said only 'explains single-tensor inputs; got a tuple
    probe' to a model(cat, num) user; the message now names the inputs and the two ways out."""
    from lightning_causal.audits import FairnessAudit, InputEffectAudit, LayerMapAudit
    from lightning_causal.causal import AttributeFlip, input_effects

    class CatNum(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.emb, self.lin = nn.Embedding(3, 2), nn.Linear(2 + 2 + 4, 2)

        def forward(self, cat, num):
            return self.lin(torch.cat([self.emb(cat).flatten(1), num], 1))

    model = CatNum()
    cat, num = torch.tensor([[0, 1], [2, 1], [1, 0]]), torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    for audit in (InputEffectAudit(baseline=0), LayerMapAudit(), FairnessAudit(AttributeFlip(1))):
        with pytest.raises(ValueError, match=r"2 inputs \(\[3, 2\] of torch.int64, \[3, 4\] of torch.float32\).*unpack_batch=lambda batch: \(x1, y, \(x2,\)\)"):
            audit.validate(model, Probe((cat, num)))
    r = InputEffectAudit(baseline=0, ace_values=None).run(model, Probe(cat, additional_forward_args=(num,)))
    want = input_effects(model, (cat, num), (torch.tensor([[0, 1]]), torch.full((1, 4), 2)), baseline=(0, 0.0))[:, :2]
    assert torch.allclose(r.vectors["mean_abs_effect"], want.abs().mean(0))


class _ConstantBranch(nn.Module):
    """``b(relu(a(x)) + c(1))``: no intervention on x moves ``c``, whose CKA is undefined (NaN)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.c, self.b = nn.Linear(4, 8), nn.Linear(1, 8), nn.Linear(8, 3)

    def forward(self, x):
        const = self.c(torch.ones(x.shape[0], 1))
        return self.b(torch.relu(self.a(x)) + const)


def test_mean_adjacent_cka_leaves_out_a_layer_no_intervention_moves():
    # it was NaN for every epoch: one undefined pair (c, a) made the mean of all pairs NaN
    r = LayerMapAudit().run(seeded(_ConstantBranch(), 0).eval(), Probe(torch.randn(8, 4, generator=torch.Generator().manual_seed(0))))
    lm = r.graphs["layer_map"]
    assert lm["layers"] == ["c", "a", "b"] and lm["cka"][0][1] == "nan" and r.vectors["layer_response"][0] == 0
    assert r.scalars["mean_adjacent_cka"] == pytest.approx(lm["cka"][1][2], rel=1e-12)
