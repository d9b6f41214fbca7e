"""CounterfactualFairnessTerm on a model that draws random numbers in training (dropout, a graph transformer's sign
flips of its positional encodings): each row and its counterfactual twin get the same draws (newuser109)."""

import copy

import torch
from torch import nn

from lightning_causal import AttributeFlip, CounterfactualFairnessTerm


def _dropout_net(reads_column: bool) -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 2)).train()
    if not reads_column:
        with torch.no_grad():
            net[0].weight[:, 2] = 0.0
    return net


def _rows() -> torch.Tensor:
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(1))
    x[:, 2] = (x[:, 2] > 0).float()
    return x


class SignFlips(nn.Module):
    """forward(x, pe): random signs of the encodings per row in training, as LapPE is trained; column 2 never read."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(4 + 3, 2)
        with torch.no_grad():
            self.lin.weight[:, 2] = 0.0

    def forward(self, x: torch.Tensor, pe: torch.Tensor) -> torch.Tensor:
        if self.training:
            pe = pe * (torch.randint(0, 2, (pe.shape[0], 1), device=pe.device) * 2 - 1)
        return self.lin(torch.cat([x, pe], 1))


def test_a_column_the_model_never_reads_costs_nothing_behind_dropout():
    term = CounterfactualFairnessTerm(AttributeFlip(2))
    torch.manual_seed(5)
    assert term.loss(_dropout_net(reads_column=False), _rows(), None).item() == 0.0  # 0.036 when the twins drew apart


def test_sign_flips_of_encodings_passed_as_forward_arguments():
    x, pe = _rows(), torch.randn(32, 3, generator=torch.Generator().manual_seed(2))
    model = SignFlips().train()
    term = CounterfactualFairnessTerm(AttributeFlip(2))
    torch.manual_seed(5)
    assert term.loss(model, x, None, additional_forward_args={"pe": pe}).item() == 0.0
    assert term.loss(model, x, None, additional_forward_args={"pe": pe}).item() == 0.0  # a later step, remembered


def test_the_term_equals_two_passes_from_one_seed():
    net, x = _dropout_net(reads_column=True), _rows()
    x_cf = AttributeFlip(2)(x)
    torch.manual_seed(7)
    got = CounterfactualFairnessTerm(AttributeFlip(2)).loss(net, x, None)
    torch.manual_seed(7)
    p = net(x).softmax(1)
    torch.manual_seed(7)
    q = net(x_cf).softmax(1)
    want = 0.5 * (p - q).abs().sum(1).mean()
    assert torch.allclose(got, want, atol=1e-6), (float(got), float(want))
    assert float(want) > 0


def test_batch_norm_statistics_move_once_and_models_without_draws_run_one_pass():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Dropout(0.3), nn.Linear(8, 2)).train()
    fresh = copy.deepcopy(net)
    x = _rows()
    torch.manual_seed(3)
    CounterfactualFairnessTerm(AttributeFlip(2)).loss(net, x, None)
    fresh(x)  # one pass of the batch's rows: the statistics the step's first pass records
    assert int(net[1].num_batches_tracked) == 1
    assert torch.allclose(net[1].running_mean, fresh[1].running_mean, atol=1e-6)
    assert torch.allclose(net[1].running_var, fresh[1].running_var, atol=1e-6)

    calls = []
    plain = nn.Linear(4, 2)
    plain.register_forward_hook(lambda m, a, o: calls.append(a[0].shape[0]))
    CounterfactualFairnessTerm(AttributeFlip(2)).loss(plain, x, None)
    assert calls == [64]  # both halves in one pass, as before


def _steps(module, x, y, n):
    logged = {}
    module.log_dict = lambda values, **kw: logged.update({k: float(v) for k, v in values.items()})
    module.log = lambda name, value, **kw: logged.__setitem__(name, float(value))
    seen = []
    for i in range(n):
        module.training_step((x, y), i)
        seen.append(logged["repair/counterfactual_fairness"])
    return seen


def test_the_modules_fused_pass_pairs_no_twins_that_drew_apart():
    from lightning_causal import CausalRepairModule

    x, y = _rows(), torch.arange(32) % 2
    module = CausalRepairModule(_dropout_net(reads_column=False), [CounterfactualFairnessTerm(AttributeFlip(2))]).train()
    torch.manual_seed(1)
    assert _steps(module, x, y, 3) == [0.0, 0.0, 0.0]  # the fused steps (the second on) gave 0.077 and 0.082


def test_a_model_without_draws_still_fuses():
    from lightning_causal import CausalRepairModule

    x, y = _rows(), torch.arange(32) % 2
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    calls = []
    net[0].register_forward_hook(lambda m, a, o: calls.append(a[0].shape[0]))
    module = CausalRepairModule(net, [CounterfactualFairnessTerm(AttributeFlip(2))]).train()
    _steps(module, x, y, 3)
    assert calls[-2:] == [64, 64]  # one pass of the batch and its counterfactuals per step
