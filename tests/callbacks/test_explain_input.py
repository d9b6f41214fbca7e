"""CausalAuditCallback(explain=...): the single-input audits explain an input of a model of several other than
forward's first (``forward(self, image, tab)``, batches ``((image, tab), y)``), the others passed along by row."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader, Dataset

from lightning_causal.audits import (
    CaptumBaseline,
    CausalGraphAudit,
    InputEffectAudit,
    SobolAudit,
    UnitImportanceAudit,
)
from lightning_causal.audits.base import Probe
from lightning_causal.callbacks import CausalAuditCallback
from lightning_causal.causal import input_effects, unit_effects
from lightning_causal.causal.engine.chosen_input import ChosenInput, chosen_input
from tests.helpers.lightning import After, Before, quick_trainer

N = 12


class ImageTab(pl.LightningModule):
    """``forward(self, image, tab)``: image ``[N, 1, 4, 4]`` and table ``[N, 3]``, 3 classes, float64, dropout."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.tab = nn.Sequential(nn.Linear(3, 4), nn.Tanh())
        self.drop = nn.Dropout(0.3)
        self.head = nn.Linear(6, 3)
        self.double()

    def forward(self, image, tab):
        return self.head(self.drop(torch.cat([self.conv(image), self.tab(tab)], 1)))

    def training_step(self, batch, batch_idx):
        (image, tab), y = batch
        return nn.functional.cross_entropy(self(image, tab), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class Data(Dataset):
    def __init__(self) -> None:
        g = torch.Generator().manual_seed(1)
        self.image = torch.rand(N, 1, 4, 4, generator=g, dtype=torch.float64)
        self.tab = torch.randn(N, 3, generator=g, dtype=torch.float64)
        self.y = torch.arange(N) % 3

    def __len__(self) -> int:
        return N

    def __getitem__(self, i):
        return (self.image[i], self.tab[i]), self.y[i]


def fit(root, audits, *, callbacks=(), max_epochs=1, logger=False, **options) -> tuple[CausalAuditCallback, ImageTab, Data]:
    data, module = Data(), ImageTab()
    cb = CausalAuditCallback(audits, probe_size=N, report_dir=None, **options)
    quick_trainer(callbacks=[*callbacks, cb], max_epochs=max_epochs, num_sanity_val_steps=0, default_root_dir=root,
                  logger=logger).fit(
        module, DataLoader(data, batch_size=4))
    return cb, module, data


def test_the_table_explained_equals_the_estimator_of_both_inputs_and_a_brute_force(tmp_path):
    cb, module, data = fit(tmp_path, [InputEffectAudit(ace_values=None, feature_names=["a", "b", "c"])], explain=1)
    effect = cb.last_results["input_effect"].maps["effect"]
    assert effect.shape == (N, 3)
    model = module.eval()
    image_group = torch.zeros(1, 1, 4, 4, dtype=torch.long)  # the image one group (0), the columns 1..3
    columns = torch.arange(1, 4).unsqueeze(0)
    both = input_effects(model, (data.image, data.tab), (image_group, columns), (0.0, 0.0))
    torch.testing.assert_close(effect, both[:, 1:], rtol=0, atol=1e-12)
    with torch.no_grad():  # f_t(x) - f_t(x | do(tab_c := 0)), t the predicted class
        out = model(data.image, data.tab)
        t = out.argmax(1, keepdim=True)
        brute = torch.stack([out.gather(1, t)[:, 0] - model(data.image, data.tab.index_fill(1, torch.tensor([c]), 0.0))
                             .gather(1, t)[:, 0] for c in range(3)], 1)
    torch.testing.assert_close(effect, brute, rtol=0, atol=1e-12)
    assert cb.explain == 1 and cb.probe is not None and isinstance(cb.probe.inputs, tuple)  # the probe kept whole


def test_the_parameter_name_and_the_first_position(tmp_path):
    named, _, _ = fit(tmp_path, [InputEffectAudit(ace_values=None)], explain="tab")
    by_index, _, _ = fit(tmp_path, [InputEffectAudit(ace_values=None)], explain=1)
    assert torch.equal(named.last_results["input_effect"].maps["effect"], by_index.last_results["input_effect"].maps["effect"])
    first, _, _ = fit(tmp_path, [InputEffectAudit(ace_values=None, patch_size=2)], explain=0)
    today, _, _ = fit(tmp_path, [InputEffectAudit(ace_values=None, patch_size=2)],  # today's way: the table a forward argument
                      unpack_batch=lambda b: (b[0][0], b[1], (b[0][1],)))
    assert first.last_results["input_effect"].maps["effect"].shape == (N, 1, 4, 4)
    assert torch.equal(first.last_results["input_effect"].maps["effect"], today.last_results["input_effect"].maps["effect"])
    drop = "causal/audit_seconds"
    assert {k: v for k, v in first.last_scalars.items() if k != drop} == {k: v for k, v in today.last_scalars.items() if k != drop}


def test_layer_names_stay_the_models_and_every_input_audits_keep_the_whole_probe(tmp_path):
    cb, module, data = fit(tmp_path, [InputEffectAudit(ace_values=None), UnitImportanceAudit(["tab.0"]),
                            CaptumBaseline(methods=["IntegratedGradients"], layers=["tab.0"])],
                           explain="tab")
    expected = unit_effects(module.eval(), (data.image, data.tab), "tab.0").abs().mean(0)  # over both inputs, as before
    torch.testing.assert_close(cb.last_results["unit_importance"].vectors["importance/tab.0"], expected, rtol=0, atol=1e-12)
    # Captum's layer method along the explained table: finite comparisons (a layer off its path gets NaN ones)
    layer = {k: v for k, v in cb.last_results["captum_baseline"].scalars.items() if "tab.0" in k}
    assert layer and all(math.isfinite(v) for v in layer.values()), layer


def test_the_wrapper_is_the_models_names_modes_and_parameters():
    module = ImageTab()
    wrapper, x, args = chosen_input(module, (torch.zeros(2, 1, 4, 4, dtype=torch.float64), torch.ones(2, 3, dtype=torch.float64)), 1)
    assert isinstance(wrapper, ChosenInput) and x.shape == (2, 3) and len(args) == 1
    assert [n for n, _ in wrapper.named_modules()] == [n for n, _ in module.named_modules()]
    assert wrapper.get_submodule("tab.0") is module.tab[0] and list(wrapper.parameters()) == list(module.parameters())
    wrapper.eval()
    assert not module.training and not module.drop.training and not wrapper.training
    wrapper.train()
    assert module.training and module.drop.training
    hit = []
    handle = dict(wrapper.named_modules())["tab.0"].register_forward_hook(lambda m, i, o: hit.append(i[0]))
    wrapper.eval()
    wrapper(x, *args)
    handle.remove()
    assert torch.equal(hit[0], x)  # the hook of the model's own module saw the table
    kw_wrapper, _, kw_args = chosen_input(module, (torch.zeros(2, 1, 4, 4, dtype=torch.float64), x), 1, {})
    torch.testing.assert_close(kw_wrapper(x, **kw_args), wrapper(x, *args))


def test_training_is_bit_identical_with_and_without_the_callback(tmp_path):
    def weights(callbacks, audits=None):
        data, module = Data(), ImageTab()
        cbs = list(callbacks)
        if audits is not None:
            before = Before()
            cbs = [before, CausalAuditCallback(audits, probe_size=N, explain="tab"), After(before)]
        torch.manual_seed(3)
        quick_trainer(callbacks=cbs, max_epochs=2, num_sanity_val_steps=0, default_root_dir=tmp_path).fit(module, DataLoader(data, batch_size=4, shuffle=True))
        return [p.detach().clone() for p in module.parameters()], cbs

    plain, _ = weights([])
    audited, cbs = weights([], [InputEffectAudit(ace_values=None), UnitImportanceAudit(["tab.0"])])
    assert cbs[-1].checked == 2  # modes, grads, buffers and RNG the same after each audit
    assert all(torch.equal(a, b) for a, b in zip(plain, audited))


@pytest.mark.parametrize("explain", [True, -1, 1.0, "", ["tab"]])
def test_bad_values_refused_at_construction(explain):
    with pytest.raises(MisconfigurationException, match=r"Expected argument `explain` to be None, an int >= 0 .* but got"):
        CausalAuditCallback([InputEffectAudit()], explain=explain)


@pytest.mark.parametrize(("explain", "match"), [
    (2, r"`explain` to be an input position from 0 to 1 or the name of one of forward's first 2 parameters \('image', "
        r"'tab'\) \(the probe holds 2 inputs\) but got 2"),
    ("table", r"but got 'table', which is no parameter of ImageTab.forward \(its parameters: \['image', 'tab'\]\)"),
])
def test_bad_values_refused_against_the_probe(tmp_path, explain, match):
    with pytest.raises(MisconfigurationException, match=match):
        fit(tmp_path, [InputEffectAudit()], explain=explain)


def test_a_probe_of_one_input_refused(tmp_path):
    with pytest.raises(MisconfigurationException, match=r"probe of several inputs for argument `explain` \(1\).*one input "
                                                         r"tensor of shape \[12, 1, 4, 4\]"):
        fit(tmp_path, [InputEffectAudit()], explain=1, unpack_batch=lambda b: (b[0][0], b[1], (b[0][1],)))
    with pytest.raises(MisconfigurationException, match=r"probe of several inputs for argument `explain` \('tab'\)"):
        fit(tmp_path, [InputEffectAudit()], explain="tab", unpack_batch=lambda b: ((b[0][0],), b[1], (b[0][1],)))


def test_sobol_still_refused_naming_the_limit_of_explain(tmp_path):
    with pytest.raises(MisconfigurationException, match=r"SobolAudit draws new inputs.*`explain=` cannot help it"):
        fit(tmp_path, [SobolAudit()], explain="tab")


def test_the_refusal_without_explain_names_it(tmp_path):
    with pytest.raises(MisconfigurationException, match=r"Expected one input tensor for InputEffectAudit.*`explain=1`"):
        fit(tmp_path, [InputEffectAudit()])


def test_the_maps_are_drawn_beside_the_explained_input(tmp_path):
    from lightning.pytorch.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = TensorBoardLogger(tmp_path)
    fit(tmp_path, [InputEffectAudit(ace_values=None, feature_names=["a", "b", "c"])], explain="tab", logger=logger)
    events = EventAccumulator(logger.log_dir)
    events.Reload()
    assert "causal/input_effect/maps/top_features" in events.Tags()["images"]  # the table's bars, not image maps


def test_the_causal_graph_explains_every_input_as_without_explain(tmp_path):
    def graph(**options):
        audit = CausalGraphAudit(["conv.0", "tab.0"], top_k=3, stability_resamples=3, noise=1.0)
        cb, _, _ = fit(tmp_path, [audit], **options)
        return {k: v for k, v in cb.last_scalars.items() if k != "causal/audit_seconds"}

    assert graph(explain="tab") == graph()  # the noise jitters the image and the table alike, as without the option


class ScaledImageTab(ImageTab):
    def forward(self, image, tab, scale=None):
        out = super().forward(image, tab)
        return out if scale is None else out * scale[:, None]


def test_keyword_forward_arguments_follow_their_rows_beside_the_other_input(tmp_path):
    data, module = Data(), ScaledImageTab()
    scale = torch.linspace(0.5, 2.0, N, dtype=torch.float64)
    probe = Probe((data.image, data.tab), data.y, {"scale": scale})
    cb = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe=probe, explain="tab")
    quick_trainer(callbacks=[cb], max_epochs=1, num_sanity_val_steps=0, default_root_dir=tmp_path, logger=False).fit(
        module, DataLoader(data, batch_size=4))
    image_group, columns = torch.zeros(1, 1, 4, 4, dtype=torch.long), torch.arange(1, 4).unsqueeze(0)
    both = input_effects(module.eval(), (data.image, data.tab), (image_group, columns), (0.0, 0.0),
                         additional_forward_args={"scale": scale})
    torch.testing.assert_close(cb.last_results["input_effect"].maps["effect"], both[:, 1:], rtol=0, atol=1e-12)
