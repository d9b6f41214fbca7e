"""CounterfactualAudit on volumes and videos ``[N, C, D, H, W]`` (trial newuser27: Conv3d models of 16^3 volumes and
6-frame videos). The audit drew pictures of images and sequences only: of a volume it found counterfactuals and
reported their norms, with no picture and no word of where the change lies. Each explained sample's depth slice
(a video's frame) of largest change is now drawn, input | counterfactual | difference, its index in the row."""

from __future__ import annotations

import torch

from lightning_causal.audits import CounterfactualAudit, Probe
from lightning_causal.audits.counterfactual import split_triptych
from lightning_causal.causal.structure.counterfactuals import CounterfactualSettings
from lightning_causal.reporting.tensorboard import TensorBoardRenderer


def test_each_sample_is_drawn_at_the_slice_where_its_counterfactual_changes_it():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2 * 5 * 4 * 4, 2, bias=False))
    w = torch.zeros(2, 2, 5, 4, 4)
    w[1, 0, 3, 1, 2] = 1.0  # class 1 reads one voxel of channel 0 at depth 3: only there can a change flip the class
    model[1].weight.data.copy_(w.reshape(2, -1))
    x = torch.zeros(3, 2, 5, 4, 4)
    x[:, 1] = torch.rand(3, 5, 4, 4, generator=torch.Generator().manual_seed(0))
    audit = CounterfactualAudit(max_samples=2, towards="runner_up", settings=CounterfactualSettings(steps=25, polish=0))
    r = audit.run(model, Probe(x))
    assert r.scalars["success_rate"] == 1.0 and r.meta["counterfactual_inputs"] == "depth_slice"
    assert [row["depth"] for row in r.tables["counterfactuals"]] == [3, 3]
    panels = split_triptych(r.images["counterfactuals"])
    assert panels["input"].shape == (2, 2, 4, 4)
    assert torch.equal(panels["difference"][:, 0].abs().flatten(1).argmax(1), torch.tensor([1 * 4 + 2] * 2))
    assert "causal/counterfactual/images/counterfactuals" in TensorBoardRenderer(max_samples=2).figures([r], x)


def test_each_column_of_the_picture_names_the_slice_it_draws():
    """The figure drew each sample's slice of largest change with no word of which slice (review of f3cfca1): the
    row's ``depth`` was in the table only, where the image maps' titles name theirs."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6 * 3 * 3, 2, bias=False))
    w = torch.zeros(2, 1, 6, 3, 3)
    w[1, 0, 4, 1, 1] = 1.0  # class 1 reads the middle voxel of slice 4: only there can a change flip the class
    model[1].weight.data.copy_(w.reshape(2, -1))
    audit = CounterfactualAudit(max_samples=2, towards="runner_up", settings=CounterfactualSettings(steps=25, polish=0))
    x = torch.zeros(2, 1, 6, 3, 3)
    r = audit.run(model, Probe(x))
    assert r.scalars["success_rate"] == 1.0 and [row["depth"] for row in r.tables["counterfactuals"]] == [4, 4]
    fig = TensorBoardRenderer(max_samples=2).figures([r], x)["causal/counterfactual/images/counterfactuals"]
    assert [ax.get_title().split("\n")[-1] for ax in fig.axes[:2]] == ["depth slice 4"] * 2
