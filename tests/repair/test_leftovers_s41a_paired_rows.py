"""leftovers_s41a: BackdoorSuppressionTerm ran the clean rows and their stamped twins as rows of one pass, so that in
training mode each twin got a dropout / DropPath mask of its own and the causal-path penalty measured that noise (a
trigger that changes nothing: units penalty 0.176 at DropPath 0.3, session 40); and the units penalty was in the
layer's own units (a BiT stage of activation std 3.77 took clean accuracy 1.0 -> 0.59 at the default weight). The
stamped rows now replay the clean pass's random draws and BatchNorm statistics (PairedPasses), and the units penalty
is divided by the suspect units' variance (scaled_shift)."""

import pytest
import torch
from torch import nn

from lightning_causal import BackdoorSuppressionTerm
from lightning_causal.causal.backdoor.triggers import Trigger
from tests.helpers.backdoor import hand_units_shift

P = 0.3
UNITS = [0, 1, 2, 5]


class DropPath(nn.Module):
    """A residual branch dropped per row (timm's DropPath): each row's keep drawn from the global stream, or from a
    generator the module holds."""

    def __init__(self, p: float, own: bool = False) -> None:
        super().__init__()
        self.p = p
        self.gen = torch.Generator().manual_seed(3) if own else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        keep = (torch.rand(x.shape[0], 1, generator=self.gen) >= self.p).to(x.dtype)
        return x * keep / (1 - self.p)


class Net(nn.Module):
    def __init__(self, drop: str = "droppath", bn: bool = False) -> None:
        super().__init__()
        self.inp, self.block, self.head = nn.Linear(4, 8), nn.Linear(8, 8), nn.Linear(8, 3)
        self.bn = nn.BatchNorm1d(8) if bn else nn.Identity()
        self.drop = nn.Dropout(P) if drop == "dropout" else DropPath(P, own=drop == "own")
        self.site = nn.Identity()

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.inp(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.trunk(x)
        return self.head(self.site(h + self.drop(torch.relu(self.block(h)))))


def _batch(n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 4, generator=g), torch.zeros(n, dtype=torch.long)


def _term(trigger: Trigger, path: str, site: str = "site", **kw) -> BackdoorSuppressionTerm:
    options = {"unlearn_weight": 0.0, "path_weight": 1.0, "distill_weight": 0.0, "augment": None, **kw}
    return BackdoorSuppressionTerm(trigger, suspects={site: UNITS} if path == "units" else None, path=path, **options)


NOTHING = Trigger(torch.zeros(4), torch.full((4,), 5.0), target=1)  # mask 0: the stamped rows are the clean ones
REAL = Trigger(torch.tensor([1.0, 0.0, 0.0, 1.0]), torch.tensor([3.0, 0.0, 0.0, -2.0]), target=1)


@pytest.mark.parametrize("path", ["units", "logit"])
@pytest.mark.parametrize("drop", ["dropout", "droppath", "own"])
@pytest.mark.parametrize("bn", [False, True])
def test_a_trigger_that_changes_nothing_has_no_penalty_under_dropout_and_droppath(path, drop, bn):
    torch.manual_seed(0)
    model, (x, y) = Net(drop, bn).train(), _batch()
    term = _term(NOTHING, path)
    for _ in range(3):  # the first step finds the model draws (one pass run again as two), the next run two at once
        loss = term.loss(model, x, y)
        assert term.last_parts["path"] == 0.0 and float(loss.detach()) == 0.0  # before: 0.1-0.5, the masks' noise


@pytest.mark.parametrize("path", ["units", "logit"])
@pytest.mark.parametrize("bn", [False, True])
def test_a_real_triggers_penalty_is_the_hand_computed_one_with_the_clean_pass_mask(path, bn):
    torch.manual_seed(0)
    model, (x, y) = Net("droppath", bn).train(), _batch()
    term = _term(REAL, path)
    for step in range(2):
        state = torch.get_rng_state()
        loss = term.loss(model, x, y)
        after = torch.get_rng_state()
        torch.set_rng_state(state)
        keep = (torch.rand(x.shape[0], 1) >= P).float() / (1 - P)  # the clean pass's draw: the mask, fixed by hand
        assert torch.equal(torch.get_rng_state(), after)  # the stream stands where the clean pass left it
        with torch.no_grad():
            z = model.inp(x)
            mean, var = z.mean(0), z.var(0, unbiased=False)  # the clean rows' batch statistics normalise both

            def fixed(v: torch.Tensor, mean=mean, var=var, keep=keep) -> tuple[torch.Tensor, torch.Tensor]:
                a = model.inp(v)
                if bn:
                    a = (a - mean) / (var + model.bn.eps).sqrt() * model.bn.weight + model.bn.bias
                h = torch.relu(a)
                h = h + keep * torch.relu(model.block(h))
                return h, model.head(h)

            (hc, oc), (hs, os_) = fixed(x), fixed(REAL.apply(x))
        if path == "units":
            want = hand_units_shift(hs[:, UNITS], hc[:, UNITS])
        else:
            want = (os_.softmax(1)[:, 1] - oc.softmax(1)[:, 1]).clamp_min(0).sum() / x.shape[0]
        assert float(want) > 0
        torch.testing.assert_close(loss.detach(), want, rtol=1e-5, atol=1e-7)
        if bn:  # the running statistics take the clean pass alone, once a step
            assert int(model.bn.num_batches_tracked) == step + 1


def test_batchnorm_running_statistics_take_the_clean_rows_once_a_step():
    torch.manual_seed(0)
    model, (x, y) = Net("dropout", bn=True).train(), _batch()
    _term(REAL, "logit").loss(model, x, y)
    with torch.no_grad():
        z = model.inp(x)
    torch.testing.assert_close(model.bn.running_mean, 0.1 * z.mean(0))
    torch.testing.assert_close(model.bn.running_var, 0.9 + 0.1 * z.var(0, unbiased=True))
    assert int(model.bn.num_batches_tracked) == 1 and model.bn.training


def test_a_model_that_draws_nothing_keeps_its_one_pass():
    torch.manual_seed(0)
    model, (x, y) = Net("dropout", bn=True).train(), _batch()
    model.drop.p = 0.0  # nothing drawn: clean and stamped rows in one pass, one BatchNorm batch, as before
    _term(REAL, "logit").loss(model, x, y)
    with torch.no_grad():
        z = model.inp(torch.cat([x, REAL.apply(x)]))
    torch.testing.assert_close(model.bn.running_mean, 0.1 * z.mean(0))
    assert int(model.bn.num_batches_tracked) == 1


class Scale(nn.Module):
    def __init__(self, c: float) -> None:
        super().__init__()
        self.c = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.c


def _scaled_net(c: float) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), Scale(c), Scale(1 / c), nn.ReLU(), nn.Linear(8, 3))  # "1": the suspect


@pytest.mark.parametrize("c", [4.0, 3.77])
def test_the_units_penalty_and_the_repair_are_the_same_at_any_scale_of_the_layer(c):
    x, y = _batch(32)
    weights, penalties = [], []
    for scale in (1.0, c):
        model = _scaled_net(scale).train()
        term = _term(REAL, "units", site="1", unlearn_weight=0.1, path_weight=3.0)
        opt = torch.optim.SGD(model.parameters(), lr=0.02)
        for _ in range(20):
            loss = term.loss(model, x, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        penalties.append(term.last_parts["path"])
        weights.append([p.detach().clone() for p in model.parameters()])
    assert penalties[0] > 0
    assert penalties[0] == pytest.approx(penalties[1], rel=1e-5)  # before: c**2 times as large
    for a, b in zip(*weights):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


class Halting(nn.Module):
    """Dropout, then a block repeated while the rows' mean is above 0: the stamped rows take more rounds."""

    def __init__(self) -> None:
        super().__init__()
        self.inp, self.drop, self.cell, self.head = nn.Linear(4, 8), nn.Dropout(0.2), nn.Linear(8, 8), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(self.inp(x))
        h = self.cell(h)
        for _ in range(int(x.mean() > 0.5)):
            h = self.cell(h)
        return self.head(h)


def test_a_layer_called_otherwise_by_the_stamped_pass_is_refused_in_the_terms_words():
    torch.manual_seed(0)
    model, (x, y) = Halting().train(), _batch()
    trigger = Trigger(torch.ones(4), torch.full((4,), 9.0), target=1)
    term = BackdoorSuppressionTerm(trigger, suspects={"cell": [0]}, unlearn_weight=0.0, distill_weight=0.0, augment=None)
    with pytest.raises(ValueError, match=r"call for call.*call 2 returned shape \[16, 8\] where the clean pass's call "
                                         r"of that number returned no call \(the clean pass called it 1 times\)"):
        term.loss(model, x, y)

