"""leftovers_s42a: BackdoorSuppressionTerm's paired passes (leftovers_s41a) kept a model's "it draws" answer for good,
so that a BatchNorm model whose dropout was set to 0 after a step still ran two passes (its stamped rows normalised by
the clean rows' statistics: path penalty 0.2505 where a new term gave 0.1338), and a term loaded from a pickle started
over with another answer; its replayed pass advanced spectral norm's power iteration a second time each step (a third
on the step that found the model draws) and read a weight one iteration further than the clean pass's; its cached
Forward held the model strongly (a term outliving its model kept it alive); and a BatchNorm inside a composable
``torch.distributed._composable.checkpoint`` segment was not seen to be checkpointed."""

import copy
import gc
import pickle
import warnings
import weakref

import pytest
import torch
from torch import nn
from torch.nn.utils import spectral_norm as spectral_norm_hook
from torch.nn.utils.parametrizations import spectral_norm

from tests.repair.test_leftovers_s41a_paired_rows import NOTHING, REAL, Net, _batch, _term


def _one_pass_by_hand(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The logit path of one pass of both halves (a model drawing nothing): p_t(T(x)) - sg[p_t(x)], clipped, / N."""
    p = model(torch.cat([x, REAL.apply(x)])).softmax(1)[:, 1]
    return (p[16:] - p[:16].detach()).clamp_min(0).sum() / 16


@pytest.mark.parametrize("path", ["units", "logit"])
def test_a_model_whose_dropout_is_set_to_0_runs_one_pass_as_a_new_term_does(path):
    torch.manual_seed(0)
    model, (x, y) = Net("dropout", bn=True).train(), _batch()
    term = _term(REAL, path)
    term.loss(model, x, y)
    assert term._draws[model] is True  # paired passes
    model.drop.p = 0.0
    got = term.loss(model, x, y)
    assert term._draws[model] is False
    want = _term(REAL, path).loss(model, x, y)  # before: 0.2505-like gap between the two (two passes kept)
    assert torch.equal(got, want)
    if path == "logit":
        torch.testing.assert_close(got, _one_pass_by_hand(model, x), rtol=0, atol=1e-7)
    model.drop.p = 0.3  # and back: paired again
    term.loss(model, x, y)
    assert term._draws[model] is True


class Spectral(nn.Module):
    """A spectral-normed layer (its power iteration advances u, v in training forward) before a dropout."""

    def __init__(self, hook: bool = False) -> None:
        super().__init__()
        norm = spectral_norm_hook if hook else spectral_norm
        self.inp, self.mid, self.head = nn.Linear(4, 8), norm(nn.Linear(8, 8)), nn.Linear(8, 3)
        self.drop, self.site = nn.Dropout(0.3), nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.site(self.drop(torch.relu(self.mid(torch.relu(self.inp(x)))))))


def _vectors(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: b.clone() for k, b in model.named_buffers()}


@pytest.mark.parametrize("hook", [False, True])
@pytest.mark.parametrize("path", ["units", "logit"])
def test_spectral_norm_advances_once_a_step_and_both_passes_read_its_weight(hook, path):
    torch.manual_seed(0)
    model, (x, y) = Spectral(hook).train(), _batch()
    twin = copy.deepcopy(model)
    term = _term(NOTHING, path)
    for _ in range(3):  # the first step finds the model draws (a pass undone), the next run two passes at once
        loss = term.loss(model, x, y)
        twin(x)  # one plain pass: one power iteration
        assert term.last_parts["path"] == 0.0 and float(loss.detach()) == 0.0  # before: the replay's weight differed
        for k, b in model.named_buffers():
            assert torch.equal(b, dict(twin.named_buffers())[k]), k  # before: 2-3 iterations a step


def test_a_term_loaded_from_a_pickle_computes_what_the_term_computes():
    torch.manual_seed(0)
    model, (x, y) = Spectral().train(), _batch()
    term = _term(REAL, "units", site="site")
    term.loss(model, x, y)
    loaded = pickle.loads(pickle.dumps(term))  # a checkpoint's term: the model, saved beside it, loaded as a copy
    results = []
    for t, m in ((term, model), (loaded, copy.deepcopy(model))):
        torch.manual_seed(7)
        loss = t.loss(m, x, y)
        loss.backward()
        results.append((loss.detach(), [p.grad for p in m.parameters()], _vectors(m)))
    (a, ga, va), (b, gb, vb) = results
    assert torch.equal(a, b)  # before: the loaded term's first step advanced spectral norm once more
    assert all(torch.equal(p, q) for p, q in zip(ga, gb))
    assert all(torch.equal(va[k], vb[k]) for k in va)


def test_the_term_does_not_keep_a_model_it_outlives_alive():
    torch.manual_seed(0)
    model, (x, y) = Net("dropout").train(), _batch()
    term = _term(REAL, "units")
    term.loss(model, x, y)
    gone = weakref.ref(model)
    del model
    gc.collect()
    assert gone() is None  # before: the cached Forward held it
    assert len(term._forwards) == 0


composable = pytest.importorskip("torch.distributed._composable")


class Composable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inp, self.body = nn.Linear(4, 8), nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.ReLU())
        self.drop, self.site, self.head = nn.Dropout(0.3), nn.Identity(), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.site(self.drop(self.body(torch.relu(self.inp(x))))))


def test_a_batchnorm_in_a_composable_checkpoint_runs_one_pass_with_a_warning():
    x, y = _batch()
    torch.manual_seed(0)
    model = Composable().train()
    plain = copy.deepcopy(model)
    composable.checkpoint(model.body)
    term = _term(REAL, "logit")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.manual_seed(5)
        loss = term.loss(model, x, y)
        loss.backward()
    assert any("checkpointed segment" in str(w.message) for w in caught)  # before: none, paired passes
    torch.manual_seed(5)
    want = _one_pass_by_hand(plain, x)
    want.backward()
    torch.testing.assert_close(loss.detach(), want.detach())
    for p, q in zip(model.parameters(), plain.parameters()):
        torch.testing.assert_close(p.grad, q.grad)
