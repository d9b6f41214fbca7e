"""A model that branches on a statistic of its batch passes the clean-probe check (two probe rows alone match the probe's
pass), yet an intervention moves the statistic of a pass of stacked intervened rows across the threshold: the whole pass
takes the other branch and its effects were returned silently. The row engine's chunks are now checked against their
first and last rows run alone (``stacked_rows.RowsAlone``); ordinary models give the same numbers as without it."""

import pytest
import torch
from torch import nn

from lightning_causal.causal.effects.input_effects import input_effects
from lightning_causal.causal.effects.unit_effects import unit_effects
from lightning_causal.causal.engine.batching import checked_chunks, map_rows
from lightning_causal.causal.engine.stacked_rows import RowsAlone, rows_alone_checked
from lightning_causal.causal.sensitivity.icc import intrinsic_causal_contributions
from lightning_causal.causal.sensitivity.sobol import sobol_indices
from lightning_causal.causal.structure.graph import causal_graph
from lightning_causal.causal.structure.layer_map import layer_causal_map

# x0 of the four samples: the probe's mean 1.5 and the trial pair's (samples 0, 1) 1.5 are above the threshold 0.5
PROBE = torch.tensor([[2.0, 1.0], [1.0, 1.0], [1.0, 1.0], [2.0, 1.0]])


def identity() -> nn.Linear:
    """A 2 x 2 linear layer that passes its input on."""
    layer = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(2))
    return layer


class BatchBranch(nn.Module):
    """``s = h0 + h1``, times 10 where the batch's mean of ``h0`` is above 0.5 (``h = x``: an identity layer ``h``)."""

    def __init__(self) -> None:
        super().__init__()
        self.h = identity()

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        return self.h(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.hidden(x)
        s = h.sum(1, keepdim=True)
        return s * 10 if h[:, 0].mean() > 0.5 else s


def unchecked():
    """An outer chunk check that runs each chunk as it is: the estimators' own check stays off inside."""
    return checked_chunks(lambda fn, idx, rows_of: fn(idx))


# Rows are unit- (group-) major: rows 0-3 zero h0 (x0) of samples 0-3 (each alone: h0 = 0, the plain branch, s = 1),
# rows 4-7 zero h1 (x1) (each alone: x0 >= 1, the x10 branch, s = 10 x0). Passes of 4 rows: each pass's rows agree
# with themselves alone, effects 30 - 1 = 29 and 20 - 10... as computed row by row below. Passes of 5 rows: rows 0-4
# hold x0 = 0, 0, 0, 0, 2 (mean 0.4: the plain branch), where row 4 alone takes the x10 one (s = 20, in the pass 2).
# One pass of all 8 rows: mean 0.75, the x10 branch, where rows 0-3 alone take the plain one (s = 1, in the pass 10).
ALONE = torch.tensor([[29.0, 10.0], [19.0, 10.0], [19.0, 10.0], [29.0, 10.0]])


@pytest.mark.parametrize("estimator", [unit_effects, input_effects])
def test_passes_that_take_the_other_branch_are_refused(estimator):
    model = BatchBranch()
    args = (model, PROBE, "h") if estimator is unit_effects else (model, PROBE)
    assert torch.equal(estimator(*args, max_batch_size=4), ALONE)  # every pass agrees with its rows alone
    for rows, wrong in [(5, "rows [0, 4] run alone give [1, 20] and in the pass [1, 2]"),
                        (None, "rows [0, 7] run alone give [1, 20] and in the pass [10, 20]")]:
        with unchecked():  # what it returned before: the branch of the pass
            silently = estimator(*args, max_batch_size=rows)
        assert not torch.equal(silently, ALONE)
        with pytest.raises(ValueError, match=r"stacks in one pass to give what they give alone") as caught:
            estimator(*args, max_batch_size=rows)
        said = str(caught.value)
        name = "unit_effects on 'h'" if estimator is unit_effects else "input_effects"
        assert name in said and wrong in said and "control flow on a batch statistic" in said and "torch.where" in said


def rows_of_a_then_b():
    """A sampler whose first draw (A) is the probe and second (B) zeros."""
    calls = []

    def sampler(n: int, generator: torch.Generator) -> torch.Tensor:
        calls.append(n)
        return PROBE.double() if len(calls) % 2 == 1 else torch.zeros(4, 2, dtype=torch.float64)
    return sampler


def branch_func(x: torch.Tensor) -> torch.Tensor:
    s = x.sum(1)
    return s * 10 if x[:, 0].mean() > 0.5 else s


def test_sobol_pass_that_takes_the_other_branch_is_refused():
    # blocks of 4 rows: A (x0 = 2, 1, 1, 2), B (zeros), then A with x0 from B and A with x1 from B; passes of 5 rows put
    # rows 10-14 (x0 = 0, 0, 2, 1, 1: mean 0.8, the x10 branch) together, where row 10 alone (x0 = 0) takes the plain one
    # (1, in the pass 10). A's rows, which the spread-row check reads, agree with themselves alone: it saw nothing.
    with unchecked():
        sobol_indices(branch_func, rows_of_a_then_b(), n=4, max_batch_size=5, n_bootstrap=10)  # analysed before
    with pytest.raises(ValueError, match=r"The Sobol' analysis \(sobol_indices\) stacks in one pass.*rows \[10, 14\] run alone give \[1, 10\] and in the pass \[10, 10\]"):
        sobol_indices(branch_func, rows_of_a_then_b(), n=4, max_batch_size=5, n_bootstrap=10)
    sobol_indices(branch_func, rows_of_a_then_b(), n=4, max_batch_size=4, n_bootstrap=10)  # blocks agree: analysed


class TwoDraws:
    """An SCM of two independent nodes (no equations): its first noise draw the probe, its second zeros."""

    columns = ["a", "b"]

    def __init__(self) -> None:
        self.sampler = rows_of_a_then_b()

    def sample_noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.sampler(n, generator)

    def generate(self, noise: torch.Tensor) -> torch.Tensor:
        return noise


def test_icc_pass_that_takes_the_other_branch_is_refused():
    # the rows of the Sobol' test (the noises are the inputs): rows 10-14 together, row 10 alone the plain branch
    with unchecked():
        intrinsic_causal_contributions(branch_func, TwoDraws(), n=4, shapley=False, max_batch_size=5, n_bootstrap=10)
    with pytest.raises(ValueError, match=r"intrinsic_causal_contributions stacks in one pass.*rows \[10, 14\]"):
        intrinsic_causal_contributions(branch_func, TwoDraws(), n=4, shapley=False, max_batch_size=5, n_bootstrap=10)


def test_layer_map_pass_that_takes_the_other_branch_is_refused():
    # the input groups' rows as input_effects' (group-major): passes of 5 rows mix the branches, of 4 do not
    model = Deep()
    with unchecked():
        layer_causal_map(model, PROBE, max_batch_size=5)
    with pytest.raises(ValueError, match=r"layer_causal_map stacks in one pass.*rows \[0, 4\] run alone"):
        layer_causal_map(model, PROBE, max_batch_size=5)
    layer_causal_map(model, PROBE, max_batch_size=4)


def test_causal_graph_pass_that_takes_the_other_branch_is_refused():
    # the graph's sweep zeroes each unit of h per sample, as unit_effects does: passes of 5 rows mix the branches
    model = Deep()
    with unchecked():
        causal_graph(model, PROBE, ["h", "g"], max_batch_size=5)
    with pytest.raises(ValueError, match=r"causal_graph stacks in one pass.*rows \[0, 4\] run alone give \[29, 10\]"):
        causal_graph(model, PROBE, ["h", "g"], max_batch_size=5)
    causal_graph(model, PROBE, ["h", "g"], max_batch_size=4)


class Deep(BatchBranch):
    """:class:`BatchBranch` with a second identity layer ``g`` after ``h``, for the layer map's chain."""

    def __init__(self) -> None:
        super().__init__()
        self.g = identity()

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        return self.g(self.h(x))


class MCDropout(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(6, 16), nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(nn.functional.dropout(torch.relu(self.fc1(x)), 0.3, training=True))


def ordinary_models():
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    bn = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    bn[1].running_mean.uniform_(-1, 1)
    cnn = nn.Sequential(nn.Unflatten(1, (1, 2, 3)), nn.Conv2d(1, 4, 2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(48, 3))
    return {"mlp": (mlp, "1"), "batchnorm_eval": (bn, "2"), "cnn": (cnn, "2"), "mc_dropout": (MCDropout(), "fc1"),
            "half": (nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3)).half(), "1")}


@pytest.mark.parametrize("name", ["mlp", "batchnorm_eval", "cnn", "mc_dropout", "half"])
def test_ordinary_models_give_the_same_numbers_unrefused(name):
    model, layer = ordinary_models()[name]
    x = torch.randn(24, 6, generator=torch.Generator().manual_seed(1)).to(next(model.parameters()).dtype)
    runs = [lambda: unit_effects(model, x, layer, max_batch_size=40), lambda: input_effects(model, x, max_batch_size=40),
            lambda: {k: v for k, v in layer_causal_map(model, x, max_batch_size=40).to_dict().items() if k != "meta"},
            lambda: {k: v for k, v in causal_graph(model, x, [layer], max_batch_size=40).to_dict().items() if k != "meta"}]
    for run in runs if name != "half" else runs[:2]:
        torch.manual_seed(3)
        checked = run()
        after = torch.rand(1)
        torch.manual_seed(3)
        with unchecked():
            plain = run()
        assert torch.equal(checked, plain) if isinstance(checked, torch.Tensor) else checked == plain  # the same numbers
        assert torch.equal(after, torch.rand(1))  # the generator as the estimator leaves it without the check


def test_rows_that_draw_noise_are_not_refused_and_the_generator_is_put_back():
    def noisy(idx):  # one draw per row from the global generator: rows alone draw other numbers than the chunk
        return idx + torch.rand(idx.shape[0], dtype=torch.float64) * 100

    torch.manual_seed(0)
    with rows_alone_checked("A noisy estimator"):
        checked = map_rows(6, 3, noisy, torch.device("cpu"))
    torch.manual_seed(0)
    assert torch.equal(checked, map_rows(6, 3, noisy, torch.device("cpu")))


def test_the_check_itself():
    check = RowsAlone("An estimator")
    assert torch.equal(check(lambda idx: idx * 2.0, torch.arange(5), lambda out: out), torch.arange(5) * 2.0)
    with pytest.raises(ValueError, match=r"rows \[0, 4\] run alone give \[0, 4\] and in the pass \[0, 20\]"):
        check(lambda idx: idx.double() * len(idx), torch.arange(5), lambda out: out)

    def two_or_more(idx):  # a function that wants two rows: its rows alone are not compared, its chunk runs as before
        if len(idx) < 2:
            raise ValueError("Expected more than 1 value per channel when training")
        return idx * 3.0

    assert torch.equal(check(two_or_more, torch.arange(4), lambda out: out), torch.arange(4) * 3.0)
    with pytest.raises(TypeError, match="`what`"):
        RowsAlone(None)  # type: ignore[arg-type]
