"""Recurrent and 1-D sequence models in the audits (trial "seq"): a GRU whose forward returns
``(logits, hidden_state)``, explained with ``output=0``."""

from __future__ import annotations

from collections.abc import Callable

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, CausalGraphAudit
from lightning_causal.audits import Probe
from lightning_causal.baselines import attribute
from lightning_causal.causal import (
    CounterfactualSettings,
    causal_graph,
    counterfactual_explanation,
    input_effects,
    unit_effects,
)
from tests.helpers.lightning import quick_trainer


class GRUWithState(pl.LightningModule):
    """A GRU classifier on ``[N, T, C]`` signals whose forward returns ``(logits, h_n)``."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(3, 6, batch_first=True)
        self.hidden = nn.Linear(6, 6)
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        out, h = self.gru(x)
        return self.head(torch.relu(self.hidden(out[:, -1]))), h

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x)[0], y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _signals(n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 10, 3, generator=g), torch.randint(0, 2, (n,), generator=g)


def test_causal_graph_audit_takes_output_for_a_model_returning_logits_and_state(tmp_path):
    """CausalGraphAudit(output=0) did not hand `output` to Audit, so the callback's set-up read the
    model's (logits, h_n) with output=None and refused the audit, telling the user to pass the
    `output=` they had passed."""
    torch.manual_seed(0)
    x, y = _signals()
    module = GRUWithState()
    audit = CausalGraphAudit(["gru", "hidden"], unit_dim=-1, output=0, stability_resamples=0)
    callback = CausalAuditCallback([audit], probe_size=8, report_dir=tmp_path)
    quick_trainer(max_epochs=1, limit_train_batches=1, callbacks=[callback]).fit(
        module, DataLoader(TensorDataset(x, y), batch_size=16), DataLoader(TensorDataset(x, y), batch_size=16)
    )
    graph = causal_graph(module, x[:8], ["gru", "hidden"], unit_dim=-1, output=0)
    result = callback.last_results["causal_graph"]
    assert result.scalars["n_edges"] == len(graph.edges)
    assert result.scalars["faithfulness"] == graph.meta["faithfulness"]
    direct = audit.run(module, Probe(x[:8]))
    assert direct.scalars["n_edges"] == len(graph.edges)


# ------------------------------------------------------------ gradients through an RNN in eval mode
class SpyLSTM(nn.LSTM):
    """An LSTM that records whether cuDNN was enabled at each forward pass that autograd tracks:
    cuDNN's RNN backward raises in eval mode ('cudnn RNN backward can only be called in training
    mode'), so a forward that is backpropagated in eval mode must not run on cuDNN."""

    record: Callable[[bool], None]  # the test's list's `append`: the audits put back the lists a model holds

    def forward(self, *args, **kwargs):
        if torch.is_grad_enabled() and not self.training:
            self.record(torch.backends.cudnn.enabled)
        return super().forward(*args, **kwargs)


class SpyLSTMClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = SpyLSTM(3, 4, batch_first=True)
        self.lstm.record = lambda enabled: None  # each test gives it its own list's `append`
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.lstm(x)[0][:, -1])


def _gradient_paths():
    mask = torch.arange(10).reshape(1, 10, 1) // 5
    return {
        "Saliency": lambda m, x: attribute(m, x, "Saliency", target=1),
        "IntegratedGradients": lambda m, x: attribute(m, x, "IntegratedGradients", target=1),
        "unit_effects atp": lambda m, x: unit_effects(m, x, "lstm", unit_dim=-1, method="atp"),
        "unit_effects screen": lambda m, x: unit_effects(m, x, "lstm", unit_dim=-1, screen=2),
        "input_effects attribution": lambda m, x: input_effects(m, x, mask, method="attribution"),
        "counterfactual": lambda m, x: counterfactual_explanation(m, x, 1, CounterfactualSettings(steps=3)),
    }


def test_gradient_paths_run_an_lstm_in_eval_mode_without_cudnn():
    """On a GPU, every estimator that backpropagates (Captum's methods, AtP / attribution estimates,
    the counterfactual search) raised 'cudnn RNN backward can only be called in training mode' on an
    LSTM, GRU or RNN: they run the model in eval mode with cuDNN on. They now switch cuDNN off
    around the backward passes of models with recurrent layers (and restore it)."""
    torch.manual_seed(0)
    x, _ = _signals(4)
    for name, run in _gradient_paths().items():
        model = SpyLSTMClassifier().train()
        seen: list[bool] = []
        model.lstm.record = seen.append
        run(model, x)
        assert seen, name
        assert not any(seen), f"{name} backpropagated through the LSTM in eval mode with cuDNN enabled"
        assert torch.backends.cudnn.enabled, name
        assert model.training and model.lstm.training, name


@pytest.mark.skipif(not torch.cuda.is_available(), reason="cuDNN needs a CUDA device")
def test_gradient_paths_backpropagate_through_a_cuda_lstm():
    torch.manual_seed(0)
    x, _ = _signals(4)
    for name, run in _gradient_paths().items():
        model = SpyLSTMClassifier().cuda()
        run(model, x.cuda())  # raised RuntimeError: cudnn RNN backward can only be called in training mode
        assert torch.backends.cudnn.enabled, name


def test_a_three_tensor_batch_is_answered_with_the_lengths_fix_too():
    """A batch (ids, lengths, y) was answered with only `lambda batch: (batch[0], batch[1], None)`,
    which takes the lengths for labels; the message now also gives the (x, lengths, y) form that
    docs/your_model.md recommends, and that form reads the batch as the model needs."""
    from lightning_causal.batches import default_unpack_batch, unpack

    ids, lengths, y = torch.randint(1, 9, (4, 6)), torch.tensor([6, 3, 2, 5]), torch.tensor([0, 1, 1, 0])
    with pytest.raises(ValueError) as info:
        default_unpack_batch((ids, lengths, y))
    message = str(info.value)
    assert "`unpack_batch=lambda batch: (batch[0], batch[1], None)` for batches (x, y, w)" in message
    fix = "lambda batch: (batch[0], batch[2], {'lengths': batch[1]})"
    assert f"for (x, lengths, y) of a padded sequence model forward(x, lengths), `unpack_batch={fix}`" in message
    inputs, labels, args = unpack((ids, lengths, y), lambda batch: (batch[0], batch[2], {'lengths': batch[1]}))
    assert inputs is ids and labels is y and args["lengths"] is lengths
    with pytest.raises(ValueError) as info:  # other lengths keep the one fix
        default_unpack_batch((ids, lengths, y, y))
    assert "lengths" not in str(info.value)


def test_counterfactual_sparsity_is_an_exact_fraction():
    """The share of changed elements was a float32 mean: a counterfactual that changed 8 of a
    [3, 120] signal's 360 values reported sparsity 0.02222222276031971 (per row, and as the
    CounterfactualAudit's mean_sparsity); the summary's means were float32 too. Both are now
    float64 means (8 / 360 = 0.0222...)."""
    from lightning_causal.audits import CounterfactualAudit

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(360, 2)).double()
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.copy_(torch.tensor([0.5, 0.0], dtype=torch.float64))
        model[1].weight[1].view(3, 120)[1, 60:68] = 1.0  # class 1 when channel 1's window 60-67 sums above 0.5
    x = torch.zeros(2, 3, 120, dtype=torch.float64)
    cf = counterfactual_explanation(model, x, 1, CounterfactualSettings(steps=200, lr=0.05, l1=0.0))
    assert cf.success.all()
    changed = (cf.delta != 0).flatten(1).sum(1)
    assert changed.tolist() == [8, 8]
    assert cf.sparsity.tolist() == [8 / 360, 8 / 360]
    assert cf.summary()["sparsity"] == 8 / 360
    result = CounterfactualAudit(max_samples=2, settings=CounterfactualSettings(steps=200, lr=0.05, l1=0.0)).run(
        model, Probe(x, torch.tensor([1, 1])))
    assert result.scalars["mean_sparsity"] == 8 / 360
    assert [row["sparsity"] for row in result.tables["counterfactuals"]] == [8 / 360, 8 / 360]


def test_lengths_given_as_a_list_are_refused_naming_the_argument():
    """`additional_forward_args={"lengths": [6, 3, ...]}` (a list, as `[len(s) for s in sentences]`
    gives it) reached every forward pass whole, beside batches of other rows: a packed GRU failed
    with 'IndexError: index out of range in self' from pack_padded_sequence, or (max_batch_size=N)
    with 'Expected argument `baseline` to hold token ids the model can look up', blaming a valid
    baseline. One number per sample in a list, tuple or NumPy array is now refused
    naming the argument and the fix (a tensor); the tensor gives the brute-force effects."""
    from torch.nn.utils.rnn import pack_padded_sequence

    class PackedGRU(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(10, 4)
            self.gru = nn.GRU(4, 5, batch_first=True)
            self.head = nn.Linear(5, 2)

        def forward(self, ids, lengths):
            packed = pack_padded_sequence(self.emb(ids), torch.as_tensor(lengths).cpu(), batch_first=True, enforce_sorted=False)
            return self.head(self.gru(packed)[1][-1])

    torch.manual_seed(0)
    model = PackedGRU().double().eval()
    ids = torch.randint(1, 9, (5, 6))
    lengths = torch.tensor([6, 3, 2, 5, 4])
    ids[torch.arange(6) >= lengths[:, None]] = 0
    for afa, name in [({"lengths": lengths.tolist()}, "the forward argument 'lengths'"),
                      ((tuple(lengths.tolist()),), "the positional forward argument 0"),
                      ({"lengths": lengths.numpy()}, "the forward argument 'lengths'")]:
        with pytest.raises(ValueError, match="to be a tensor but got") as info:
            input_effects(model, ids, baseline=9, additional_forward_args=afa)
        assert str(info.value).startswith(f"Expected {name} to be a tensor")
        assert "torch.tensor(lengths)" in str(info.value)
    effects = input_effects(model, ids, baseline=9, additional_forward_args={"lengths": lengths})
    with torch.no_grad():
        out = model(ids, lengths)
        pred = out.argmax(1, keepdim=True)
        for t in range(6):
            swapped = ids.clone()
            swapped[:, t] = torch.where(t < lengths, 9, ids[:, t])
            ref = (out.gather(1, pred) - model(swapped, lengths).gather(1, pred))[:, 0]
            torch.testing.assert_close(effects[:, t], ref, rtol=0, atol=1e-12)


def test_a_constant_list_of_floats_as_long_as_the_probe_still_passes():
    """The refusal above is for integers per sample; a constant list of floats of N values passes."""

    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(3, 2)

        def forward(self, x, scales):
            return self.lin(x) * torch.tensor(scales)

    torch.manual_seed(0)
    model, x = Scaled().double(), torch.randn(2, 3, dtype=torch.float64)
    effects = input_effects(model, x, additional_forward_args=([0.5, 2.0],), target=1)
    with torch.no_grad():
        ref = torch.stack([model(x, [0.5, 2.0])[:, 1] - model(x.index_fill(1, torch.tensor([j]), 0.0), [0.5, 2.0])[:, 1]
                           for j in range(3)], 1)
    torch.testing.assert_close(effects, ref, rtol=0, atol=1e-12)


def test_copula_sobol_warns_when_the_probe_has_fewer_samples_than_columns():
    """SobolAudit(sampler='copula') on a [3, 40] signal from 16 samples fits a 120-column rank
    correlation of rank at most 15: the Cholesky innovations of the later columns are nearly 0, so
    the first columns' windows took the variance and the window the model reads got none, silently.
    It now warns naming the numbers; a probe with more samples than columns does not warn and finds
    the window (the analytic total index of a model reading one window of independent inputs is 1)."""
    import warnings

    from lightning_causal.audits import SobolAudit

    model = nn.Sequential(nn.Flatten(), nn.Linear(120, 2)).double()
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.zero_()
        model[1].weight[1].view(3, 40)[1, 30:40] = 1.0  # the output reads window 3 of channel 1 only
    windows = (torch.arange(40) // 10).reshape(1, 1, 40)
    g = torch.Generator().manual_seed(0)
    audit = SobolAudit(n=256, feature_mask=windows, sampler="copula", target=1, probability=False, n_bootstrap=0)
    small = torch.randn(16, 3, 40, generator=g, dtype=torch.float64)
    with pytest.warns(UserWarning, match=r"correlation of 120 varying columns estimated from 16 samples is singular"):
        wrong = audit.run(model, Probe(small))
    assert float(wrong.vectors["total"][3]) < 0.5  # the artifact the warning is about
    large = torch.randn(400, 3, 40, generator=g, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        right = audit.run(model, Probe(large))
    assert float(right.vectors["total"][3]) > 0.8


def test_causal_graph_names_the_calls_of_a_cell_unrolled_over_time_and_the_fix():
    """causal_graph on a GRUCell unrolled over 5 steps said only "['cell'] ran more than once",
    while docs/your_model.md listed a cell unrolled over time among the modules the hidden-unit
    estimators intervene on at every call. The message now says how often it ran and what to name
    instead (a module that runs once, e.g. an nn.Identity on the last hidden state); the graph over
    that Identity runs, and unit_effects on the cell equals a hook loop zeroing it at every step."""

    class Unrolled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cell = nn.GRUCell(3, 4)
            self.last = nn.Identity()
            self.head = nn.Linear(4, 2)

        def forward(self, x):
            h = x.new_zeros(x.shape[0], 4)
            for t in range(x.shape[1]):
                h = self.cell(x[:, t], h)
            return self.head(self.last(h))

    torch.manual_seed(0)
    model = Unrolled().double().eval()
    x = torch.randn(6, 5, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"'cell' 5 times: a shared layer, or a cell unrolled over time.*nn\.Identity"):
        causal_graph(model, x, ["cell", "head"])
    assert causal_graph(model, x, ["last", "head"]).layers == ["last", "head"]
    effects = unit_effects(model, x, "cell")
    with torch.no_grad():
        out = model(x)
        pred = out.argmax(1, keepdim=True)
        for u in range(4):
            handle = model.cell.register_forward_hook(lambda m, i, o, u=u: o.index_fill(1, torch.tensor([u]), 0.0))
            ref = (out.gather(1, pred) - model(x).gather(1, pred))[:, 0]
            handle.remove()
            torch.testing.assert_close(effects[:, u], ref, rtol=0, atol=1e-12)
