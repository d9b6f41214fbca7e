"""Review of 765957d7 (category codes kept in a float column take no stability noise): ``CaptumBaseline``'s
``noise_sigma=`` (a noise in the input's units) still noised the codes, which ``.long()`` ran as other categories, in
silence, or stopped the audit with a bare ``IndexError`` where a code went below 0; a probe whose only varying elements
are codes was said to hold no varying element (one sample?); and integer-valued numeric columns (age, hours, a count, a
0/1 flag) beside the codes keep their linear quantiles and their noise."""

import warnings

import torch
from torch import nn

from lightning_causal import CaptumBaseline, CausalGraphAudit, Probe
from lightning_causal.causal.effects.input_effects import interventional_expectations
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.input_noise import float_code_elements


class CensusNet(nn.Module):  # numeric columns first (read as numbers), then occupation (6 levels) and sex (2) as codes
    def __init__(self, numeric=2):
        super().__init__()
        self.numeric = numeric
        self.occupation, self.sex = nn.Embedding(6, 3), nn.Embedding(2, 2)
        self.hidden = nn.Sequential(nn.Linear(numeric + 5, 12), nn.Tanh())
        self.out = nn.Linear(12, 2)

    def forward(self, x):
        k = self.numeric
        z = torch.cat([x[:, :k] / 50.0, self.occupation(x[:, k].long()), self.sex(x[:, k + 1].long())], 1)
        return self.out(self.hidden(z))


def census(n=96, numeric=None):
    g = torch.Generator().manual_seed(0)
    numeric = torch.randn(n, 2, generator=g) if numeric is None else numeric
    return torch.cat([numeric, torch.randint(0, 6, (n, 1), generator=g).float(),
                      torch.randint(0, 2, (n, 1), generator=g).float()], 1)


def code_values_run(model, x, run, columns=slice(-2, None)):  # every value of `columns` (the codes) run, the result
    seen = []
    handle = model.register_forward_pre_hook(lambda m, args: seen.append(args[0][:, columns].detach().clone()))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = run()
    finally:
        handle.remove()
    return torch.cat(seen), result


def test_noise_sigma_leaves_codes_whole_and_named():
    torch.manual_seed(0)
    model, x = CensusNet().eval(), census()
    # 0.3 in the input's units: occupation 0 - 1.2 ran as code -1 (a bare IndexError), 3 - 0.2 as code 2 (in silence)
    codes, result = code_values_run(model, x, lambda: CaptumBaseline(("Saliency",), noise_sigma=0.3).run(model, Probe(x)))
    assert float((codes - codes.round()).abs().max()) < 0.01, "a category code was run with Gaussian noise"
    assert 0.0 < result.scalars["stability"] < 1.0  # the numeric columns are still jittered
    assert result.meta["sigma"] == 0.3
    assert any(n.startswith("stability leaves column 2, column 3 as they are: category codes") for n in result.meta["notes"])


def test_a_probe_whose_only_varying_elements_are_codes_is_said_so():
    torch.manual_seed(0)
    model, x = CensusNet().eval(), census()
    x[:, :2] = 1.0  # the numeric columns are constant: only the codes vary, and they take no noise
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        captum = CaptumBaseline(("Saliency",)).run(model, Probe(x))
        graph = CausalGraphAudit(["hidden.1"], top_k=4, stability_resamples=1).run(model, Probe(x))
    assert "stability" not in captum.scalars and "stability_noise" not in graph.scalars
    assert any(n.startswith("no stability: the noise would move only category codes") for n in captum.meta["notes"])
    assert any(n.startswith("no stability_noise: the only input elements that vary over the probe's samples are "
                            "category codes") for n in graph.meta["notes"])
    assert not any("one sample?" in n for n in captum.meta["notes"] + graph.meta["notes"])


def test_integer_valued_numeric_columns_beside_codes_stay_numbers():
    g = torch.Generator().manual_seed(1)
    numeric = torch.stack([torch.randint(17, 91, (128,), generator=g), torch.randint(1, 100, (128,), generator=g),
                           torch.randint(0, 6, (128,), generator=g), (torch.rand(128, generator=g) < 0.3).long()], 1)
    x = census(128, numeric.float())  # age, hours per week, children, a 0/1 flag: whole values, read as numbers
    torch.manual_seed(0)
    model = CensusNet(numeric=4).eval()
    (codes,) = float_code_elements(Forward(model), (x,))
    assert codes.reshape(-1).nonzero().flatten().tolist() == [4, 5]  # the codes only, not the whole-valued numbers
    _, grid = interventional_expectations(model, x, torch.arange(6)[None], "quantiles", target=1, num_values=5)
    linear = torch.quantile(x[:, :4].T, torch.linspace(0.05, 0.95, 5), dim=1).T
    assert torch.allclose(grid[:4], linear) and not bool((grid[0] == grid[0].round()).all())  # age: interpolated
    values, result = code_values_run(model, x, lambda: CaptumBaseline(("Saliency",)).run(model, Probe(x)))
    assert float((values - values.round()).abs().max()) < 0.05  # the gradient-path check steps a code by ~0.01
    seen = []
    handle = model.register_forward_pre_hook(lambda m, args: seen.append(args[0][:, :4].detach().clone()))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            CausalGraphAudit(["hidden.1"], top_k=4, stability_resamples=1).run(model, Probe(x))
    finally:
        handle.remove()
    numbers = torch.cat(seen)
    assert float((numbers - numbers.round()).abs().max()) > 0.1  # the numeric columns took their noise
