"""``benchmarks/backdoor_np.py`` (a development-set study, issue 17): its method names are checked before a run, the
polarizer starts as the identity after the named layer and is the only thing trained, the inner attack stays in its L2
ball and moves towards its targets, and the outer loss is the paper's four terms."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from benchmarks import backdoor_np as npd
from lightning_causal.models import DigitsCNN


def test_method_names_parse_and_refuse_with_the_form():
    assert npd.method_parts("np:pool1:50:0.01:3") == ("pool1", 50, 0.01, 3.0)
    assert npd.method_parts("np:pool2:5:1e-3:0.5") == ("pool2", 5, 0.001, 0.5)
    for bad in ("np:pool1:50:0.01", "np:fc1:50:0.01:3", "np:pool1:0:0.01:3", "np:pool1:50:0:3", "np:pool1:50:0.01:0",
                "nd:pool1:50:0.01:3", "np:pool1:x:0.01:3", "np:pool1:50:nan:3", "np:pool1:50:0.01:3:1"):
        with pytest.raises(ValueError, match=rf"np:<after>:<epochs>:<lr>:<bound>.*{bad!r}"):
            npd.method_parts(bad)


@pytest.mark.parametrize(("after", "channels"), [("pool1", 16), ("pool2", 32)])
def test_the_polarizer_starts_as_the_identity_after_its_layer_and_alone_is_trained(after, channels):
    torch.manual_seed(0)
    model = DigitsCNN().eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(8, 1, 8, 8)
    net, plug = npd.polarized(model, after)
    assert plug[0].weight.shape == (channels, channels, 1, 1) and not plug.training and not net.training
    assert torch.equal(plug[0].weight.flatten(1), torch.eye(channels))
    with torch.no_grad():  # the eval-mode BatchNorm of fresh statistics divides by sqrt(1 + 1e-5) only
        assert torch.allclose(net(x), model(x), atol=1e-4)
        plug[0].weight.mul_(0.0)  # the polarizer is on the path: zeroing it changes the output
        assert not torch.allclose(net(x), model(x), atol=1e-2)
    assert [n for n, p in net.named_parameters() if p.requires_grad] == [f"{after}.1.{k}" for k in
                                                                          ("0.weight", "1.weight", "1.bias")]
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())  # the fold model untouched


def test_the_targeted_perturbation_stays_in_its_ball_and_moves_towards_the_targets():
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)).eval()
    x, target = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    for bound in (0.3, 3.0):
        xa = npd.targeted_perturbation(model, x, target, bound, steps=2, reached=1.1)
        assert xa.min() >= 0 and xa.max() <= 1 and not xa.requires_grad
        assert ((xa - x).flatten(1).norm(dim=1) <= bound + 1e-5).all()
        with torch.no_grad():
            assert F.cross_entropy(model(xa), target) < F.cross_entropy(model(x), target)
    # 2 signed steps of 0.1 (no projection at bound 3, no early stop): the perturbation is at most 0.2 a pixel
    xa = npd.targeted_perturbation(model, x, target, 3.0, steps=2, reached=1.1)
    assert (xa - x).abs().max() <= 0.2 + 1e-6
    # early stop: a target already reached by every image takes one step only (at most 0.1 a pixel)
    with torch.no_grad():
        pred = model(x).argmax(1)
    assert (npd.targeted_perturbation(model, x, pred, 3.0, steps=2) - x).abs().max() <= 0.1 + 1e-6


def test_the_outer_loss_is_the_four_weighted_terms_by_hand():
    logits = {"clean": torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 3.0]]),
              "adv": torch.tensor([[0.5, 1.5, 0.0], [1.0, 0.0, 2.0]])}
    model = lambda z: logits["clean"] if z.sum() == 0 else logits["adv"]  # noqa: E731 - a lookup, not a net
    x, xa = torch.zeros(2, 1), torch.ones(2, 1)
    y, target = torch.tensor([0, 2]), torch.tensor([2, 1])
    p = logits["adv"].softmax(1)
    wrong = torch.tensor([1, 0])  # the most likely class of x' other than y: row 0 class 1, row 1 class 0
    away = lambda c: -(1.0001 - p[torch.arange(2), c] + 1e-12).log().mean()  # noqa: E731
    expected = (F.cross_entropy(logits["clean"], y) + 0.4 * F.cross_entropy(logits["adv"], y) + 0.4 * away(wrong)
                + 0.4 * away(target))
    assert torch.equal(npd.wrong_top(logits["adv"], y), wrong)
    assert torch.allclose(npd.np_loss(model, x, y, xa, target), expected)


def test_training_moves_only_the_polarizer_and_traces_every_ten_epochs():
    torch.manual_seed(2)
    model = DigitsCNN().eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.rand(40, 1, 8, 8), torch.randint(0, 10, (40,))
    seen = []
    net, extra = npd.train_polarizer(model, "pool2", x, y, 20, 0.01, 3.0, seed=0, every=lambda e, n: seen.append(e))
    assert seen == [10, 20] and extra["moved"] > 0 and 0 <= extra["reach"] <= 1 and not net.training
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items() if not k.startswith("pool2.1."))
    again, _ = npd.train_polarizer(model, "pool2", x, y, 20, 0.01, 3.0, seed=0)  # seeded: the same polarizer
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values()))


def test_the_command_line_refuses_repair_and_reversed_naming_np(monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["backdoor_np.py", "--reversed"])
    with pytest.raises(SystemExit):
        npd.main()
    assert "not used by this study (each NP setting names its own repair)" in capsys.readouterr().err
    monkeypatch.setattr("sys.argv", ["backdoor_np.py", "--methods", "np:conv9:50:0.01:3"])
    with pytest.raises(SystemExit):
        npd.main()
    assert "'np:conv9:50:0.01:3'" in capsys.readouterr().err


def test_the_trace_table_pools_each_reading_as_the_summary_pools_a_method(tmp_path):
    import json

    from benchmarks import backdoor_protocol as bp

    patch, clean = bp.DEV_CASES[6], bp.DEV_CASES[16]
    m = "np:pool2:50:0.01:3"
    rows = []
    for fold in range(2):
        rows += [{"seed": patch.seed, "fold": fold, "method": "none", "n": 100, "correct": 90, "lost": 0, "gained": 0,
                  "asr_hits": 40, "asr_n": 80},
                 {"seed": patch.seed, "fold": fold, "method": m, "n": 100, "correct": 88, "lost": 2, "gained": 0,
                  "asr_hits": 1, "asr_n": 80, "trace": [[10, 90 + fold, 20], [50, 88, 1]]},
                 {"seed": clean.seed, "fold": fold, "method": "none", "n": 100, "correct": 95, "lost": 0, "gained": 0},
                 {"seed": clean.seed, "fold": fold, "method": m, "n": 100, "correct": 94, "lost": 1, "gained": 0,
                  "trace": [[10, 95 - fold], [50, 94]]}]
    path = tmp_path / "np.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert npd.trace_table([patch, clean], path).splitlines() == [
        "| polarizer read | patch: ASR ≤ 2% | Δ ≥ −1 | mean Δ | mean ASR | clean: mean Δ | worst Δ |",
        "|---|---|---|---|---|---|---|",
        f"| {m} after 10 epochs | 0/1 | 1/1 | +0.50 | 25.0 | -0.50 | -0.50 |",
        f"| {m} after 50 epochs | 1/1 | 0/1 | -2.00 | 1.2 | -1.00 | -1.00 |"]
