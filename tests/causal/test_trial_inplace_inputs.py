"""Trial (inplace): a model that normalises its input in place (``x.sub_(mean).div_(std)``)."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects, layer_causal_map, patch_mask, unit_effects


class NormalisesInPlace(nn.Module):
    def __init__(self, traceable: bool = True) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.5, -0.2]).view(1, 2, 1, 1))
        self.register_buffer("std", torch.tensor([2.0, 0.5]).view(1, 2, 1, 1))
        self.conv, self.fc = nn.Conv2d(2, 3, 3, padding=1), nn.Linear(3, 2)
        self.traceable = traceable

    def forward(self, x):
        x.sub_(self.mean).div_(self.std)
        if not self.traceable and x.abs().sum() < 0:  # data-dependent control flow: torch.fx cannot trace
            return self.fc(x.mean((2, 3)))
        return self.fc(torch.tanh(self.conv(x)).mean((2, 3)))


def _model(traceable: bool = True) -> nn.Module:
    torch.manual_seed(0)
    return NormalisesInPlace(traceable).double().eval()


def _x() -> torch.Tensor:
    return torch.randn(4, 2, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


def _logit(model, x, target):
    with torch.no_grad():
        return model(x.clone()).gather(1, target[:, None])[:, 0]  # a fresh copy per pass


@pytest.mark.parametrize(("traceable", "use_suffix", "path"), [(True, True, "fx"), (False, True, "hooks"), (True, False, "full")])
def test_unit_effects_of_a_model_that_modifies_its_input_in_place(traceable, use_suffix, path):
    # every pass normalised the caller's probe tensor once more: the estimators refused the model
    # as "its forward depends on the batch" (samples run alone differed from the batch) and the
    # caller's tensor came back normalised
    model, x = _model(traceable), _x()
    given = x.clone()
    target = torch.ones(4, dtype=torch.long)
    got, info = unit_effects(model, x, "conv", target=target, use_suffix=use_suffix, max_batch_size=3, return_info=True)
    assert info.path == path
    assert torch.equal(x, given)
    f0, cols = _logit(model, x, target), []
    for u in range(3):
        def zero(_m, _i, out, u=u):
            out = out.clone()
            out[:, u] = 0
            return out
        handle = model.conv.register_forward_hook(zero)
        cols.append(f0 - _logit(model, x, target))
        handle.remove()
    torch.testing.assert_close(got, torch.stack(cols, 1), atol=1e-12, rtol=0)


def test_input_effects_and_layer_map_leave_the_probe_as_given():
    model, x = _model(), _x()
    given = x.clone()
    mask = patch_mask((2, 4, 4), 2)
    target = torch.zeros(4, dtype=torch.long)
    got = input_effects(model, x, mask, target=target)
    f0 = _logit(model, x, target)
    expected = torch.stack([f0 - _logit(model, torch.where(mask == g, 0.0, x), target) for g in range(4)], 1)
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)
    layer_causal_map(model, x, mask, ["conv", "fc"])
    assert torch.equal(x, given)


class ScalesInPlace(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(3, 4), nn.Linear(4, 2)

    def forward(self, x, scale):
        scale.mul_(2.0)  # a per-sample forward argument modified in place
        return self.b(torch.tanh(self.a(x)) * scale)


def test_a_per_sample_forward_argument_modified_in_place_is_given_back():
    torch.manual_seed(0)
    model = ScalesInPlace().double().eval()
    x = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    scale = torch.rand(5, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) + 0.5
    given = scale.clone()
    target = torch.zeros(5, dtype=torch.long)
    got = unit_effects(model, x, "a", target=target, additional_forward_args={"scale": scale}, max_batch_size=3)
    assert torch.equal(scale, given)
    with torch.no_grad():
        f0 = model(x, scale.clone())[:, 0]
        cols = []
        for u in range(4):
            handle = model.a.register_forward_hook(lambda _m, _i, out, u=u: out.index_fill(1, torch.tensor([u]), 0.0))
            cols.append(f0 - model(x, scale.clone())[:, 0])
            handle.remove()
    torch.testing.assert_close(got, torch.stack(cols, 1), atol=1e-12, rtol=0)


def test_inputs_are_copied_until_a_pass_shows_the_model_leaves_them(monkeypatch):
    """A copy of every input per pass cost about a fifth of a small MLP's input_effects: once a pass
    leaves the inputs unchanged, later passes only compare versions."""
    import lightning_causal.causal.engine.forward as fw

    copies = []
    real = fw.kept_inputs
    monkeypatch.setattr(fw, "kept_inputs", lambda values: copies.append(len(values)) or real(values))
    plain = fw.Forward(nn.Linear(3, 2).double())
    for _ in range(3):
        plain(torch.randn(4, 3, dtype=torch.float64))
    assert len(copies) == 1 and plain.copies_inputs is False
    copies.clear()
    changing = fw.Forward(_model())
    x = _x()
    before = x.clone()
    for _ in range(3):
        changing(x)
    assert len(copies) == 3 and changing.copies_inputs is True and torch.equal(x, before)


def test_an_in_place_change_on_a_later_pass_only_is_refused_naming_the_fix():
    class Sometimes(nn.Module):
        def forward(self, x):
            if x.shape[0] == 1:  # changes its input for single rows only
                x.mul_(2)
            return x.sum(1, keepdim=True)

    from lightning_causal.causal.engine.forward import Forward

    forward = Forward(Sometimes())
    forward(torch.ones(3, 2))
    with pytest.raises(RuntimeError, match=r"modified its input in place.*x = x.clone\(\)"):
        forward(torch.ones(1, 2))
