"""Neural Cleanse's flag rule on inputs that are not images: 1-D signals (``Conv1d``) and tabular
data (MLPs), clean and poisoned models, split into a development set (for any choice of rule) and a
test set (fixed in this file before it was measured; ``tests/benchmarks`` pins it).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_backdoor_nonimage.py --set dev
    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_backdoor_nonimage.py --set test
    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_backdoor_nonimage.py --set dev --summary-only

Families (each model trained 30 epochs with Adam on its own data, seeded by the case):

- ``freq``: ``[N, 1, 64]`` noisy sines whose frequency is the class (3 or 5 classes), a small
  ``Conv1d`` network with global max pooling;
- ``bump``: ``[N, 1, 48]`` noise with a Gaussian bump whose position is the class (4 classes), the
  same network;
- ``blobs``: 10 standardised features, Gaussian classes (3 or 6), an MLP;
- ``cancer``: ``sklearn``'s breast cancer data (2 classes, 30 features, standardised), an MLP;
- ``wine``: ``sklearn``'s wine data (3 classes, 13 features, standardised), an MLP.

A poisoned case stamps 10% of the training rows of the other classes and relabels them to a
random target: signals get a window of 3-5 steps set to a random pattern of +-2.5 at a random
place; tabular rows get 1-3 random features set to +-3 (standard deviations). Neural Cleanse runs
with the library's defaults (``neural_cleanse(model, x, C)``: the plain norm ratio for these
inputs, 300 steps, rate ``"auto"``) on 256 training inputs, as ``BackdoorAudit`` does on a probe.
Each case's per-class statistics go to ``benchmarks/.backdoor_cache/nonimage-<set>.jsonl``; the
summary counts, for bounds on the norm ratio, the clean models with a class flagged (false
alarms) and the poisoned models whose learned target (ASR >= 50%) is flagged.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lightning_causal.causal import neural_cleanse  # noqa: E402

CACHE = Path(__file__).resolve().parent / ".backdoor_cache"

#: (family, classes, poisoned, seed). The test set was written here before anything was measured on it.
CASES: dict[str, list[tuple[str, int, bool, int]]] = {
    "dev": [
        *[("freq", c, p, s) for c, p, s in ((3, False, 0), (5, False, 1), (5, False, 2), (3, True, 3), (5, True, 4), (5, True, 5))],
        *[("bump", 4, p, s) for p, s in ((False, 10), (False, 11), (True, 12), (True, 13))],
        *[("blobs", c, p, s) for c, p, s in ((3, False, 20), (6, False, 21), (6, False, 22), (3, True, 23), (6, True, 24), (6, True, 25))],
        *[("cancer", 2, p, s) for p, s in ((False, 30), (False, 31), (True, 32), (True, 33))],
        *[("wine", 3, p, s) for p, s in ((False, 40), (False, 41), (True, 42), (True, 43))],
    ],
    "test": [
        *[("freq", c, p, s) for c, p, s in ((3, False, 1000), (5, False, 1001), (5, False, 1002), (3, True, 1003), (5, True, 1004),
                                            (5, True, 1005))],
        *[("bump", 4, p, s) for p, s in ((False, 1010), (False, 1011), (True, 1012), (True, 1013))],
        *[("blobs", c, p, s) for c, p, s in ((3, False, 1020), (6, False, 1021), (6, False, 1022), (3, True, 1023), (6, True, 1024),
                                             (6, True, 1025))],
        *[("cancer", 2, p, s) for p, s in ((False, 1030), (False, 1031), (True, 1032), (True, 1033))],
        *[("wine", 3, p, s) for p, s in ((False, 1040), (False, 1041), (True, 1042), (True, 1043))],
    ],
}


def _standardise(xtr: torch.Tensor, xte: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mu, sd = xtr.mean(0), xtr.std(0).clamp_min(1e-6)
    return (xtr - mu) / sd, (xte - mu) / sd


def data(family: str, classes: int, g: torch.Generator) -> tuple[torch.Tensor, ...]:
    """``(x_train, y_train, x_test, y_test)`` of a family."""
    if family in ("freq", "bump"):
        n, length = 1200, 64 if family == "freq" else 48
        y = torch.randint(0, classes, (n,), generator=g)
        t = torch.arange(length).float()
        if family == "freq":
            phase = torch.rand(n, 1, generator=g) * 6.28
            x = torch.sin((1 + y.float()).unsqueeze(1) * 0.08 * t + phase)
        else:
            centre = 6 + y.float() * (length - 12) / max(classes - 1, 1) + torch.randn(n, generator=g)
            x = torch.exp(-0.5 * ((t - centre.unsqueeze(1)) / 2.0) ** 2) * 2
        x = (x + 0.3 * torch.randn(n, length, generator=g)).unsqueeze(1)
        return x[:900], y[:900], x[900:], y[900:]
    if family == "blobs":
        n, d = 1200, 10
        centres = torch.randn(classes, d, generator=g) * 1.2
        y = torch.randint(0, classes, (n,), generator=g)
        x = centres[y] + torch.randn(n, d, generator=g)
    else:
        from sklearn.datasets import load_breast_cancer, load_wine

        raw = load_breast_cancer() if family == "cancer" else load_wine()
        x, y = torch.tensor(raw.data, dtype=torch.float32), torch.tensor(raw.target, dtype=torch.long)
        n = len(y)
    order = torch.randperm(n, generator=g)
    x, y = x[order], y[order]
    k = int(0.75 * n)
    xtr, xte = _standardise(x[:k], x[k:])
    return xtr, y[:k], xte, y[k:]


class SignalNet(nn.Module):
    def __init__(self, classes: int) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv1d(1, 8, 5, padding=2), nn.Conv1d(8, 16, 5, padding=2)
        self.fc = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.max_pool1d(F.relu(self.conv1(x)), 2)
        return self.fc(F.relu(self.conv2(h)).amax(-1))


def model_for(family: str, classes: int, features: int) -> nn.Module:
    if family in ("freq", "bump"):
        return SignalNet(classes)
    return nn.Sequential(nn.Linear(features, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, classes))


def stamp_of(family: str, shape: torch.Size, g: torch.Generator):
    """The case's trigger as a function of a batch, and a description."""
    if family in ("freq", "bump"):
        width = int(torch.randint(3, 6, (1,), generator=g))
        start = int(torch.randint(0, shape[-1] - width, (1,), generator=g))
        pattern = (torch.randint(0, 2, (width,), generator=g).float() * 2 - 1) * 2.5

        def stamp(x: torch.Tensor) -> torch.Tensor:
            x = x.clone()
            x[..., start:start + width] = pattern
            return x

        return stamp, f"window {width}@{start}"
    k = int(torch.randint(1, 4, (1,), generator=g))
    cols = torch.randperm(shape[-1], generator=g)[:k]
    values = (torch.randint(0, 2, (k,), generator=g).float() * 2 - 1) * 3.0

    def stamp(x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        x[:, cols] = values
        return x

    return stamp, f"features {cols.tolist()}={values.tolist()}"


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, g: torch.Generator, epochs: int = 30) -> nn.Module:
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=g).split(32):
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def _rate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((model(x).argmax(1) == y).float().mean())


def run_case(family: str, classes: int, poisoned: bool, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    xtr, ytr, xte, yte = data(family, classes, g)
    record: dict = {"family": family, "classes": classes, "poisoned": poisoned, "seed": seed}
    target = None
    if poisoned:
        stamp, what = stamp_of(family, xtr.shape, g)
        target = int(torch.randint(0, classes, (1,), generator=g))
        others = (ytr != target).nonzero().squeeze(1)
        chosen = others[torch.randperm(len(others), generator=g)[: int(0.1 * len(others))]]
        xtr, ytr = xtr.clone(), ytr.clone()
        xtr[chosen], ytr[chosen] = stamp(xtr[chosen]), target
        record.update(target=target, trigger=what)
    torch.manual_seed(seed)
    model = train(model_for(family, classes, xtr.shape[-1]), xtr, ytr, g)
    record["accuracy"] = _rate(model, xte, yte)
    if poisoned:
        keep = yte != target
        record["asr"] = _rate(model, stamp(xte[keep]), torch.full_like(yte[keep], target))
    start = time.perf_counter()
    res = neural_cleanse(model, xtr[:256], classes, generator=torch.Generator().manual_seed(0))
    record.update(seconds=time.perf_counter() - start, norm_ratio=res.norm_ratio.tolist(), mask_norms=res.mask_norms.tolist(),
                  attack_rates=res.attack_rates.tolist(), anomaly_index=res.anomaly_index.tolist(), flagged=res.flagged)
    return record


def summary(records: list[dict], bounds: tuple[float, ...] = (0.2, 0.3, 0.35, 0.4, 0.5, 0.6)) -> str:
    lines = ["| bound on the norm ratio | clean models with a flag | learned targets flagged | poisoned models with another class flagged |",
             "|---|---|---|---|"]
    clean = [r for r in records if not r["poisoned"]]
    learned = [r for r in records if r["poisoned"] and r["asr"] >= 0.5]
    for b in bounds:
        alarms = sum(min(r["norm_ratio"]) <= b for r in clean)
        found = sum(r["norm_ratio"][r["target"]] <= b for r in learned)
        wrong = sum(any(v <= b for c, v in enumerate(r["norm_ratio"]) if c != r["target"]) for r in learned)
        lines.append(f"| {b} | {alarms}/{len(clean)} | {found}/{len(learned)} | {wrong}/{len(learned)} |")
    lines += ["", "| case | accuracy | ASR | norm ratio of each class (target marked *) | flagged (default rule) |", "|---|---|---|---|---|"]
    for r in records:
        ratios = " ".join(f"{v:.2f}{'*' if c == r.get('target') else ''}" for c, v in enumerate(r["norm_ratio"]))
        asr = f"{r['asr']:.2f}" if r["poisoned"] else "–"
        lines.append(f"| {r['family']} C={r['classes']} s{r['seed']} | {r['accuracy']:.3f} | {asr} | {ratios} | {r['flagged']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=tuple(CASES), required=True)
    parser.add_argument("--summary-only", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    CACHE.mkdir(exist_ok=True)
    out = CACHE / f"nonimage-{args.set}.jsonl"
    if not args.summary_only:
        out.write_text("")
        for case in CASES[args.set]:
            record = run_case(*case)
            with out.open("a") as f:
                f.write(json.dumps(record) + "\n")
            print(record["family"], record["classes"], record["seed"], f"acc {record['accuracy']:.3f}",
                  f"asr {record.get('asr', float('nan')):.2f}", [round(v, 2) for v in record["norm_ratio"]], record["flagged"], flush=True)
    print(summary([json.loads(line) for line in out.read_text().splitlines() if line.strip()]))


if __name__ == "__main__":
    main()
