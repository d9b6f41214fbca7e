"""CausalRepairModule(explain=...): on ``forward(self, image, tab)`` with batches ``((image, tab), y)`` the terms act
on the chosen input, the other following each row, as CausalAuditCallback(explain=). Before, such batches were refused
(the terms act on one input tensor) and the way out was a wrapper taking the table first plus an ``unpack_batch``
passing the image as a forward argument. Term values by hand on the two-input model; bad values refused."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from lightning_causal import AttributeFlip, CausalRepairModule, CounterfactualFairnessTerm
from lightning_causal.causal.backdoor.triggers import Trigger
from lightning_causal.repair.backdoor import BackdoorSuppressionTerm
from tests.helpers.lightning import quick_trainer
from tests.helpers.multimodal import ImageTab

N = 12


def _batch(n=N):
    g = torch.Generator().manual_seed(0)
    tab = torch.randn(n, 5, generator=g, dtype=torch.float64)
    tab[:, 3] = (torch.rand(n, generator=g) < 0.5).double()
    return {"image": torch.randn(n, 1, 8, 8, generator=g, dtype=torch.float64), "tab": tab, "y": torch.arange(n) % 2}


def _both(b):
    return (b["image"], b["tab"]), b["y"], None


@pytest.mark.parametrize("explain", [1, "tab"])
@pytest.mark.parametrize("fraction", [1.0, 0.5])
def test_the_term_flips_the_tables_column_beside_each_rows_own_image(explain, fraction):
    torch.manual_seed(0)
    model = ImageTab().double()
    batch = _batch()
    term = CounterfactualFairnessTerm(AttributeFlip(3), weight=2.0, fraction=fraction, name="cf")
    module = CausalRepairModule(model, [term], unpack_batch=_both, explain=explain)
    total, logs = module.objective(batch)
    k = int(N * fraction)
    flipped = batch["tab"][:k].clone()
    flipped[:, 3] = 1 - flipped[:, 3]
    with torch.no_grad():  # total variation of p(image, tab) and p(image, tab with column 3 flipped), by hand
        p = model(batch["image"][:k], batch["tab"][:k]).softmax(1)
        q = model(batch["image"][:k], flipped).softmax(1)
        task = F.cross_entropy(model(batch["image"], batch["tab"]), batch["y"])
    cf = 0.5 * (p - q).abs().sum(1).mean()  # the mean over the penalised rows
    torch.testing.assert_close(logs["repair/cf"], cf, rtol=0, atol=1e-12)
    torch.testing.assert_close(logs["repair/task_loss"], task, rtol=0, atol=1e-12)  # the task loss takes both inputs
    torch.testing.assert_close(total.detach(), task + 2.0 * cf, rtol=0, atol=1e-12)
    total.backward()
    assert all(p.grad is not None for p in model.parameters())  # the model's own parameters get the gradient


def test_the_first_input_and_keyword_forward_arguments():
    torch.manual_seed(0)
    model = ImageTab().double()
    batch = _batch()
    image_term = CounterfactualFairnessTerm(lambda image: -image, weight=1.0, name="cf")  # a counterfactual image
    first = CausalRepairModule(model, [image_term], unpack_batch=_both, explain="image")
    _, logs = first.objective(batch)
    with torch.no_grad():
        p = model(batch["image"], batch["tab"]).softmax(1)
        q = model(-batch["image"], batch["tab"]).softmax(1)
    torch.testing.assert_close(logs["repair/cf"], 0.5 * (p - q).abs().sum(1).mean(), rtol=0, atol=1e-12)

    class Scaled(ImageTab):
        def forward(self, image, tab, scale=None):
            return super().forward(image, tab) * scale[:, None]

    scaled = Scaled().double()
    scaled.load_state_dict(model.state_dict())
    scale = torch.linspace(0.5, 2.0, N, dtype=torch.float64)
    module = CausalRepairModule(scaled, [CounterfactualFairnessTerm(AttributeFlip(3), weight=1.0, fraction=0.5, name="cf")],
                                unpack_batch=lambda b: ((b["image"], b["tab"]), b["y"], {"scale": scale}), explain="tab")
    _, logs = module.objective(batch)
    flipped = batch["tab"][:6].clone()
    flipped[:, 3] = 1 - flipped[:, 3]
    with torch.no_grad():  # each row's own image and scale follow it into the counterfactual pass
        p = scaled(batch["image"][:6], batch["tab"][:6], scale[:6]).softmax(1)
        q = scaled(batch["image"][:6], flipped, scale[:6]).softmax(1)
    torch.testing.assert_close(logs["repair/cf"], 0.5 * (p - q).abs().sum(1).mean(), rtol=0, atol=1e-12)


class Data(Dataset):
    def __init__(self) -> None:
        self.batch = _batch()

    def __len__(self) -> int:
        return N

    def __getitem__(self, i):
        return {k: v[i] for k, v in self.batch.items()}


def test_a_fit_sets_the_terms_up_on_the_explained_input_and_trains(tmp_path):
    torch.manual_seed(0)
    model = ImageTab().double()
    before = [p.detach().clone() for p in model.parameters()]
    module = CausalRepairModule(model, [CounterfactualFairnessTerm(AttributeFlip(3), name="cf")], lr=0.01,
                                unpack_batch=_both, explain="tab")
    trainer = quick_trainer(max_epochs=1, default_root_dir=tmp_path, logger=False)
    trainer.fit(module, DataLoader(Data(), batch_size=4))
    assert "repair/cf_epoch" in trainer.callback_metrics or "repair/cf" in trainer.callback_metrics
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert module.hparams["explain"] == "tab"
    trainer.save_checkpoint(tmp_path / "explain.ckpt")
    loaded = CausalRepairModule.load_from_checkpoint(tmp_path / "explain.ckpt", model=ImageTab().double(), terms=[])
    assert loaded.explain == "tab"  # saved as a hyper-parameter where given


@pytest.mark.parametrize("explain", [True, -1, 1.0, "", ["tab"]])
def test_bad_values_refused_at_construction(explain):
    with pytest.raises(MisconfigurationException, match=r"Expected argument `explain` to be None, an int >= 0 \(the position "
                                                         r"of the explained input in the batch's inputs tuple\).* but got"):
        CausalRepairModule(ImageTab(), [CounterfactualFairnessTerm(AttributeFlip(3))], explain=explain)


@pytest.mark.parametrize(("explain", "match"), [
    (2, r"`explain` to be an input position from 0 to 1 or the name of one of forward's first 2 parameters \('image', "
        r"'tab'\) \(the batch holds 2 inputs\) but got 2"),
    ("table", r"but got 'table', which is no parameter of ImageTab.forward \(its parameters: \['image', 'tab'\]\)"),
])
def test_bad_values_refused_against_the_batch(explain, match):
    module = CausalRepairModule(ImageTab().double(), [CounterfactualFairnessTerm(AttributeFlip(3))], unpack_batch=_both,
                                explain=explain)
    with pytest.raises(MisconfigurationException, match=match):
        module.objective(_batch())


def test_batches_of_one_input_and_a_backdoor_term_refused():
    module = CausalRepairModule(ImageTab().double(), [CounterfactualFairnessTerm(AttributeFlip(3))], explain=1,
                                unpack_batch=lambda b: (b["tab"], b["y"], {"image": b["image"]}))
    with pytest.raises(MisconfigurationException, match=r"batches of several inputs for argument `explain` \(1\).*one "
                                                         r"input tensor \(\[12, 5\]\)"):
        module.objective(_batch())
    module.unpack_batch = lambda b: ((b["tab"],), b["y"], {"image": b["image"]})  # a tuple of one
    with pytest.raises(MisconfigurationException, match=r"one input tensor \(\[12, 5\]\)"):
        module.objective(_batch())
    trigger = Trigger(torch.zeros(1, 8, 8), torch.ones(1, 8, 8), target=0)
    with pytest.raises(MisconfigurationException, match=r"term 'backdoor_suppression' \(BackdoorSuppressionTerm\) cannot: "
                                                         r"the rows its loss makes \(stamped or augmented copies"):
        CausalRepairModule(ImageTab(), [BackdoorSuppressionTerm(trigger=trigger)], explain="image")


class LitImageTab(pl.LightningModule):
    """A LightningModule of ``forward(self, image, tab)`` whose task loss is its own ``training_step``'s."""

    def __init__(self) -> None:
        super().__init__()
        self.net = ImageTab().double()

    def forward(self, image, tab):
        return self.net(image, tab)

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self(batch["image"], batch["tab"]), batch["y"])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_a_wrap_takes_explain_too():
    torch.manual_seed(0)
    inner = LitImageTab()
    wrapped = CausalRepairModule.wrap(inner, [CounterfactualFairnessTerm(AttributeFlip(3), weight=1.0, name="cf")],
                                      unpack_batch=_both, explain="tab")
    batch = _batch()
    _, logs = wrapped.objective(batch)
    flipped = batch["tab"].clone()
    flipped[:, 3] = 1 - flipped[:, 3]
    with torch.no_grad():
        p, q = inner(batch["image"], batch["tab"]).softmax(1), inner(batch["image"], flipped).softmax(1)
    torch.testing.assert_close(logs["repair/cf"], 0.5 * (p - q).abs().sum(1).mean(), rtol=0, atol=1e-12)


def test_the_refusal_without_explain_names_it():
    module = CausalRepairModule(ImageTab().double(), [CounterfactualFairnessTerm(AttributeFlip(3))], unpack_batch=_both)
    with pytest.raises(ValueError, match=r"holds 2 inputs .*pass CausalRepairModule `explain=`, the input the terms act on"):
        module.objective(_batch())
